import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { maxPayloadOf } from "../../shared/nats-connection.ts";
import { ensureStreams } from "../../shared/stream-setup.ts";
import { createBatchProcessor } from "../../worker/batch-processor.ts";
import { startConsumeLoop } from "../../worker/consume-loop.ts";
import { createDeadLetterSender } from "../../worker/dead-letters.ts";
import type { MetricStore } from "../../worker/metric-store.ts";
import { openSqliteStore } from "../../worker/sqlite-store.ts";
import { realIngestHandler } from "../helpers/ingest.ts";
import { isolated } from "../helpers/isolated.ts";
import { sendLoad } from "../helpers/load.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { readRows } from "../helpers/sqlite.ts";
import { waitFor } from "../helpers/wait.ts";
import { silentLogger } from "../helpers/logger.ts";

/**
 * A database slower than the consumer's ack wait. The worker holds each message for longer than
 * the ack wait (while its batch commits, or while it waits behind one) and must keep telling
 * JetStream it is still working on it: else JetStream delivers it again, and it is written twice.
 * The real consume loop and batch processor, a real nats-server, a real SQLite file; only the
 * store is slowed down.
 */
let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dir: string;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await nc.jetstreamManager();
  dir = await mkdtemp(join(tmpdir(), "worker-slow-store-"));
});

afterAll(async () => {
  await nc.close();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

const ACK_WAIT_SECONDS = 2;
/** Each insert takes three ack waits before it commits. */
const INSERT_DELAY_MS = 3 * ACK_WAIT_SECONDS * 1000;

/** The store, each insert waiting `INSERT_DELAY_MS` first; every insert's dedup keys are noted. */
function slowStore(store: MetricStore, inserts: string[][]): MetricStore {
  return {
    async insert(rows) {
      inserts.push(rows.map((row) => row.dedupKey));
      await sleep(INSERT_DELAY_MS);
      return store.insert(rows);
    },
    ping: () => store.ping(),
    close: () => store.close(),
  };
}

describe("a store slower than the ack wait", () => {
  it("gets each message once: nothing is redelivered, nothing is written twice", async () => {
    // Ten messages, five a batch, one batch at a time: while the first batch is stored, the
    // rest wait their turn for as long, held by the worker too.
    const { config, dbPath } = isolated(server.url, "slow", dir, {
      CONSUMER_ACK_WAIT_SECONDS: String(ACK_WAIT_SECONDS),
      WORKER_BATCH_SIZE: "5",
      WORKER_CONCURRENCY: "1",
    });
    await ensureStreams(jsm, config);
    const { handler, close } = realIngestHandler(config);
    const ids = await sendLoad(handler, { requests: 10, perRequest: 1 });
    await close();

    const inserts: string[][] = [];
    const store = slowStore(openSqliteStore(dbPath), inserts);
    const js = nc.jetstream();
    const deliveries: number[] = [];
    const loop = await startConsumeLoop({
      js,
      stream: config.stream.name,
      consumer: config.consumer.name,
      batchSize: config.worker.batchSize,
      concurrency: config.worker.concurrency,
      maxPayload: () => maxPayloadOf(nc),
      ackWaitMs: config.consumer.ackWaitSeconds * 1000,
      processBatch: createBatchProcessor({
        store,
        deadLetter: createDeadLetterSender(js, config.stream),
        maxDeliver: config.consumer.maxDeliver,
        logger: silentLogger,
      }),
      pingStore: () => store.ping(),
      recreateConsumer: () => ensureStreams(jsm, config).then(() => undefined),
      onBatch: (_, messages) => {
        for (const msg of messages) deliveries.push(msg.info.deliveryCount);
      },
      logger: silentLogger,
    });
    try {
      const info = await waitFor(
        "every message acked",
        async () => {
          const i = await jsm.consumers.info(config.stream.name, config.consumer.name);
          return i.num_ack_pending === 0 && i.num_pending === 0 && deliveries.length >= 10
            ? i
            : undefined;
        },
        60_000,
      );
      // Each message was delivered once: the consumer's sequence counts every delivery,
      // redeliveries included, and the batches saw none (what worker_messages_redelivered_total
      // counts). The consumer's num_redelivered cannot tell: it counts only the unacked.
      expect(info.delivered.consumer_seq).toBe(10);
      expect(deliveries.filter((count) => count > 1)).toEqual([]);
      expect(deliveries).toHaveLength(10);
    } finally {
      await loop.stop();
      await store.close();
    }
    // Two batches at least, each taking three ack waits; every row offered to the store once.
    expect(inserts.length).toBeGreaterThanOrEqual(2);
    const offered = inserts.flat();
    expect(offered).toHaveLength(10);
    expect(new Set(offered).size).toBe(10);
    const rows = readRows(dbPath);
    expect(rows).toHaveLength(10);
    expect(rows.map((r) => r.msg_id).sort()).toEqual([...ids].sort());
  }, 90_000);
});
