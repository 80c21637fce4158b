import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStreams, jsonSubject } from "../../shared/stream-setup.ts";
import { createDeadLetterPublisher, DLQ_HEADERS } from "../../worker/dead-letters.ts";
import { watchExhaustedMessages } from "../../worker/exhausted-messages.ts";
import { testConfig } from "../helpers/ingest.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { waitFor } from "../helpers/wait.ts";
import { silentLogger } from "../helpers/logger.ts";

/**
 * max_deliver's last resort: a message whose last delivery no worker saw fail (the worker died
 * holding it) is dead-lettered from JetStream's advisory and leaves the work queue.
 */
let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await nc.jetstreamManager();
});

afterAll(async () => {
  await nc.close();
  await server.stop();
});

describe("exhausted messages", () => {
  it("dead-letters a message that reached max_deliver unacked, and removes it from the stream", async () => {
    const config = testConfig(server.url, {
      CONSUMER_MAX_DELIVER: "2",
      CONSUMER_ACK_WAIT_SECONDS: "1",
      CONSUMER_BACKOFF_SECONDS: "",
    });
    await ensureStreams(jsm, config);
    const js = nc.jetstream();
    const watch = watchExhaustedMessages({
      nc,
      jsm,
      stream: config.stream.name,
      consumer: config.consumer.name,
      deadLetter: createDeadLetterPublisher(js, config.stream),
      logger: silentLogger,
    });
    const body = new TextEncoder().encode(
      '{"v":1,"id":"held","receivedAt":1,"metrics":[{"value":1}]}',
    );
    const ack = await js.publish(jsonSubject(config.stream), body, { msgID: "held" });

    // Two deliveries, neither acked: what a worker that crashed twice on it would leave.
    const consumer = await js.consumers.get(config.stream.name, config.consumer.name);
    for (let delivery = 1; delivery <= 2; delivery++) {
      const msg = await consumer.next({ expires: 5000 });
      expect(msg?.info.deliveryCount).toBe(delivery);
    }

    // JetStream notices the exhaustion when it next looks for something to deliver, as it does
    // for a worker's standing pull; this pull gets nothing.
    expect(await consumer.next({ expires: 3000 })).toBeNull();

    const dead = await waitFor(
      "the dead letter",
      async () => {
        const info = await jsm.streams.info(config.stream.dlqName);
        return info.state.messages === 1
          ? jsm.streams.getMessage(config.stream.dlqName, { seq: info.state.last_seq })
          : undefined;
      },
      15_000,
    );
    expect(new TextDecoder().decode(dead.data)).toBe(new TextDecoder().decode(body));
    expect(dead.header.get(DLQ_HEADERS.reason)).toBe("max_deliver");
    expect(dead.header.get(DLQ_HEADERS.streamSeq)).toBe(String(ack.seq));
    expect(dead.header.get(DLQ_HEADERS.msgId)).toBe("held");
    expect(dead.header.get(DLQ_HEADERS.deliveries)).toBe("2");
    await waitFor("the message out of the work queue", async () => {
      const info = await jsm.streams.info(config.stream.name);
      return info.state.messages === 0 ? true : undefined;
    });
    watch.unsubscribe();
  });
});
