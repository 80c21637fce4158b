import { connect, DiscardPolicy, StringCodec, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsErrorKind } from "../../shared/nats-errors.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";

/** What a real nats-server answers is what the classifier knows: each kind from a real failure. */
describe("natsErrorKind on a real nats-server's errors", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const sc = StringCodec();

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({
      name: "FULL",
      subjects: ["full"],
      max_msgs: 1,
      discard: DiscardPolicy.New,
      max_msg_size: 64,
    });
  });
  afterAll(async () => {
    await nc.close();
    await server.stop();
  });

  async function kindOf(failing: () => Promise<unknown>): Promise<string> {
    const err = await failing().then(
      () => new Error("it did not fail"),
      (e: unknown) => e,
    );
    return natsErrorKind(err);
  }

  it("stream not found, consumer not found, no message found", async () => {
    const jsm = await nc.jetstreamManager();
    expect(await kindOf(() => jsm.streams.info("NOPE"))).toBe("stream_not_found");
    expect(await kindOf(() => jsm.consumers.info("FULL", "nope"))).toBe("consumer_not_found");
    expect(await kindOf(() => jsm.streams.getMessage("FULL", { seq: 99 }))).toBe(
      "message_not_found",
    );
  });

  it("no responders: a publish no stream takes", async () => {
    expect(await kindOf(() => nc.jetstream().publish("nobody.listens", sc.encode("x")))).toBe(
      "no_responders",
    );
  });

  it("stream full, wrong last sequence, message too large", async () => {
    const js = nc.jetstream();
    await js.publish("full", sc.encode("first"));
    expect(await kindOf(() => js.publish("full", sc.encode("second")))).toBe("stream_full");
    expect(
      await kindOf(() => js.publish("full", sc.encode("x"), { expect: { lastSequence: 7 } })),
    ).toBe("wrong_last_sequence");
    expect(await kindOf(() => js.publish("full", sc.encode("y".repeat(100))))).toBe(
      "message_too_large",
    );
  });

  it("timeout: a request nobody answers in time", async () => {
    const sub = nc.subscribe("silent");
    try {
      expect(await kindOf(() => nc.request("silent", sc.encode("?"), { timeout: 50 }))).toBe(
        "timeout",
      );
    } finally {
      sub.unsubscribe();
    }
  });
});
