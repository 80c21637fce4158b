import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeEnvelope } from "../../shared/envelope.ts";
import { ensureStreams } from "../../shared/stream-setup.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { realIngestHandler, testConfig } from "../helpers/ingest.ts";
import { post } from "../helpers/requests.ts";

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
const config = () => testConfig(server.url, { PUBLISH_TIMEOUT_MS: "1000" });

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await nc.jetstreamManager();
  await ensureStreams(jsm, config());
});

afterAll(async () => {
  await nc.close();
  await server.stop();
});

async function lastSeq(): Promise<number> {
  return (await jsm.streams.info("METRICS")).state.last_seq;
}

describe("ingest handler against a real JetStream", () => {
  it("answers 202 only with the metrics durably in the stream", async () => {
    const { handler, close } = realIngestHandler(config());
    const res = await handler(post('{"data": {"value": 123.45}}'));
    const body = (await res.json()) as {
      status: string;
      seq: number;
      id: string;
      accepted: number;
    };
    await close();

    expect(res.status).toBe(202);
    expect(body).toMatchObject({ status: "ok", accepted: 1, duplicate: false, stream: "METRICS" });
    const stored = await jsm.streams.getMessage("METRICS", { seq: body.seq });
    expect(stored.header.get("Nats-Msg-Id")).toBe(body.id);
    const decoded = decodeEnvelope(stored.data);
    expect(decoded.ok && decoded.envelope.metrics).toEqual([{ value: 123.45 }]);
  });

  it("publishes nothing for an invalid request", async () => {
    const before = await lastSeq();
    const { handler, close } = realIngestHandler(config());
    const res = await handler(post('{"data": [{"value": 1}, {"value": "high"}]}'));
    await close();

    expect(res.status).toBe(400);
    expect(await lastSeq()).toBe(before);
  });

  it("keeps one message for a repeated Idempotency-Key and says the retry was a duplicate", async () => {
    const before = await lastSeq();
    const { handler, close } = realIngestHandler(config());
    const send = () =>
      handler(
        post('{"data": [{"value": 1}]}', {
          "content-type": "application/json",
          "idempotency-key": "order-42",
        }),
      );
    const first = (await (await send()).json()) as { duplicate: boolean; seq: number };
    const second = (await (await send()).json()) as { duplicate: boolean; seq: number };
    await close();

    expect(first.duplicate).toBe(false);
    expect(second).toMatchObject({ duplicate: true, seq: first.seq });
    expect(await lastSeq()).toBe(before + 1);
  });

  it("answers 503 with Retry-After when no stream takes the subject", async () => {
    const { handler, close } = realIngestHandler(
      testConfig(server.url, { NATS_SUBJECT_PREFIX: "nostream", PUBLISH_TIMEOUT_MS: "1000" }),
    );
    const res = await handler(post('{"data": {"value": 1}}'));
    await close();

    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).not.toBeNull();
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "stream_unavailable",
    );
  });

  it("answers 503 stream_full when the backlog reached max_bytes, and stores nothing", async () => {
    const small = testConfig(server.url, {
      NATS_STREAM: "SMALL",
      NATS_SUBJECT_PREFIX: "small",
      NATS_DLQ_STREAM: "SMALL_DLQ",
      STREAM_MAX_BYTES: "2048",
      PUBLISH_TIMEOUT_MS: "1000",
    });
    await ensureStreams(jsm, small);
    const { handler, close } = realIngestHandler(small);
    const statuses: number[] = [];
    let lastBody: { error?: { code: string } } = {};
    for (let i = 0; i < 20; i++) {
      const res = await handler(
        post(JSON.stringify({ data: { value: i, note: "x".repeat(200) } })),
      );
      statuses.push(res.status);
      lastBody = (await res.json()) as typeof lastBody;
    }
    await close();

    const accepted = statuses.filter((s) => s === 202).length;
    expect(accepted).toBeGreaterThan(0);
    expect(statuses.slice(accepted).every((s) => s === 503)).toBe(true);
    expect(lastBody.error?.code).toBe("stream_full");
    expect((await jsm.streams.info("SMALL")).state.messages).toBe(accepted);
  });
});

describe("ingest handler when NATS is down", () => {
  it("answers 503 nats_unavailable when it cannot connect, never a 2xx", async () => {
    const { handler, close } = realIngestHandler(
      testConfig("nats://127.0.0.1:1", { NATS_CONNECT_TIMEOUT_MS: "500" }),
    );
    const res = await handler(post('{"data": {"value": 1}}'));
    await close();

    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("nats_unavailable");
  });

  it("answers 503 when the server dies under a warm connection, and 202 again once it is back", async () => {
    const { handler, close } = realIngestHandler(config());
    expect((await handler(post('{"data": {"value": 1}}'))).status).toBe(202);

    await server.kill();
    const down = await handler(post('{"data": {"value": 2}}'));
    expect(down.status).toBe(503);
    expect(down.headers.get("retry-after")).not.toBeNull();

    await server.restart();
    let status = 0;
    for (let i = 0; i < 50 && status !== 202; i++) {
      status = (await handler(post('{"data": {"value": 3}}'))).status;
      if (status !== 202) await new Promise((r) => setTimeout(r, 200));
    }
    await close();
    expect(status).toBe(202);
    // The connection used by the other tests was dropped along with the server.
    await nc.close();
    nc = await connect({ servers: server.url });
    jsm = await nc.jetstreamManager();
  });
});
