import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ensureStreams } from "../../shared/stream-setup.ts";
import { rowsOfEnvelope } from "../../worker/metric-rows.ts";
import { openSqliteStore } from "../../worker/sqlite-store.ts";
import { realIngestHandler } from "../helpers/ingest.ts";
import { post } from "../helpers/requests.ts";
import { isolated } from "../helpers/isolated.ts";
import { loadKey, sendLoad } from "../helpers/load.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { workerMetric } from "../helpers/processes.ts";
import { workerFleet } from "../helpers/worker-fleet.ts";
import { readRows } from "../helpers/sqlite.ts";
import { waitFor } from "../helpers/wait.ts";

/** The worker under faults, on SQLite: crashes, restarts, shared consumers, NATS going away. */
let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dir: string;
const fleet = workerFleet(() => jsm);

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  jsm = await nc.jetstreamManager();
  dir = await mkdtemp(join(tmpdir(), "worker-faults-"));
});

afterEach(async () => {
  await fleet.killAll();
});

afterAll(async () => {
  await nc.close();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Waits until `expected` rows are stored, then checks there are exactly that many, none twice. */
async function expectExactlyStored(dbPath: string, ids: readonly string[], perRequest: number) {
  const expected = ids.length * perRequest;
  await waitFor(
    `${expected} rows`,
    () => (readRows(dbPath).length >= expected ? true : undefined),
    60_000,
  );
  const rows = readRows(dbPath);
  const keys = new Set(rows.map(loadKey));
  expect(rows).toHaveLength(expected);
  expect(keys.size).toBe(expected);
  for (const id of ids) {
    for (let i = 0; i < perRequest; i++) expect(keys.has(`load.${id}/${i}`)).toBe(true);
  }
}

describe("worker faults on SQLite", () => {
  it("two workers share the consumer: 10,000 metrics make exactly 10,000 rows", async () => {
    const { config, env, dbPath } = isolated(server.url, "shared", dir, {
      WORKER_BATCH_SIZE: "10",
    });
    const a = fleet.start(env);
    const b = fleet.start(env);
    const [portA, portB] = [await fleet.ready(a, config), await fleet.ready(b, config)];
    const { handler, close } = realIngestHandler(config);
    const ids = await sendLoad(handler, { requests: 200, perRequest: 50 });
    await close();

    await expectExactlyStored(dbPath, ids, 50);
    const storedA = await workerMetric(portA, "worker_metrics_stored_total");
    const storedB = await workerMetric(portB, "worker_metrics_stored_total");
    expect(storedA).toBeGreaterThan(0);
    expect(storedB).toBeGreaterThan(0);
    expect(storedA + storedB).toBe(10_000);
  });

  it("a worker SIGKILLed mid-stream and restarted loses nothing and stores nothing twice", async () => {
    const { config, env, dbPath } = isolated(server.url, "killed", dir, {
      WORKER_BATCH_SIZE: "20",
    });
    await ensureStreams(jsm, config);
    // A backlog first, so that the worker is surely in the middle of it when it is killed.
    const { handler, close } = realIngestHandler(config);
    const ids = await sendLoad(handler, { requests: 2000, perRequest: 20 });
    await close();

    const first = fleet.start(env);
    await fleet.ready(first, config);
    await waitFor("the first rows", () => (readRows(dbPath).length > 0 ? true : undefined));
    await first.stop("SIGKILL", 0);
    fleet.forget(first);
    const storedAtKill = readRows(dbPath).length;
    expect(storedAtKill).toBeGreaterThan(0);
    expect(storedAtKill).toBeLessThan(40_000);

    // What the killed worker held comes back after its ack wait.
    await fleet.ready(fleet.start({ ...env, CONSUMER_ACK_WAIT_SECONDS: "2" }), config);
    await expectExactlyStored(dbPath, ids, 20);
  }, 120_000);

  it("SIGTERM under load: exit 0, and a restart adds no row for what was already stored", async () => {
    // Messages on their way to the first worker when it stops come back after the ack wait.
    const { config, env, dbPath } = isolated(server.url, "sigterm", dir, {
      WORKER_BATCH_SIZE: "20",
      CONSUMER_ACK_WAIT_SECONDS: "2",
    });
    await ensureStreams(jsm, config);
    const { handler, close } = realIngestHandler(config);
    const ids = await sendLoad(handler, { requests: 2000, perRequest: 20 });
    await close();

    const first = fleet.start(env);
    const firstPort = await fleet.ready(first, config);
    await waitFor("the first rows", () => (readRows(dbPath).length > 0 ? true : undefined));
    const counted = await workerMetric(firstPort, "worker_metrics_stored_total");
    expect(await first.stop("SIGTERM")).toBe(0);
    fleet.forget(first);
    expect(first.output()).toContain('"msg":"stopped"');
    const rowsAfterStop = readRows(dbPath).length;
    expect(rowsAfterStop).toBeGreaterThanOrEqual(counted);
    expect(rowsAfterStop).toBeLessThan(40_000);

    const second = fleet.start(env);
    const secondPort = await fleet.ready(second, config);
    await expectExactlyStored(dbPath, ids, 20);
    // Every message whose rows the first worker committed was acked before it exited: the
    // second adds exactly the rest, and meets none of what was stored already.
    expect(await workerMetric(secondPort, "worker_metrics_stored_total")).toBe(
      40_000 - rowsAfterStop,
    );
    expect(await workerMetric(secondPort, "worker_metrics_duplicate_total")).toBe(0);
  }, 120_000);

  it("recreates its consumer when it is deleted, and goes on storing", async () => {
    const { config, env, dbPath } = isolated(server.url, "deleted", dir);
    const w = fleet.start(env);
    await fleet.ready(w, config);
    await jsm.consumers.delete(config.stream.name, config.consumer.name);
    await waitFor(
      "the consumer recreated",
      () => jsm.consumers.info(config.stream.name, config.consumer.name).catch(() => undefined),
      30_000,
    );
    const { handler, close } = realIngestHandler(config);
    const ids = await sendLoad(handler, { requests: 20, perRequest: 5 });
    await close();
    await expectExactlyStored(dbPath, ids, 5);
    expect(w.output()).toContain("consumer recreated");
  });
  it("resumes by itself after nats-server is killed and restarted on the same store", async () => {
    const { config, env, dbPath } = isolated(server.url, "natsdown", dir);
    const w = fleet.start(env);
    const port = await fleet.ready(w, config);
    const { handler, close } = realIngestHandler(config);
    const before = await sendLoad(handler, { requests: 50, perRequest: 10 });
    await expectExactlyStored(dbPath, before, 10);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);

    await server.kill();
    await waitFor("/readyz to say not ready", async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return res.status === 503
        ? ((await res.json()) as { checks: Record<string, string> })
        : undefined;
    }).then((body) => {
      expect(body.checks["nats"]).toMatch(/^down/);
    });
    await server.restart();
    await waitFor(
      "/readyz to say ready again",
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        return res.status === 200 ? true : undefined;
      },
      30_000,
    );

    const after = await sendLoad(handler, { requests: 50, perRequest: 10 });
    await close();
    await expectExactlyStored(dbPath, [...before, ...after], 10);
    expect(await workerMetric(port, "worker_metrics_stored_total")).toBe(1000);
    expect(await workerMetric(port, 'worker_events_total{event="reconnect"}')).toBeGreaterThan(0);
  });
});

describe("retention on SQLite", () => {
  it("stores no metric older than RETENTION, counts it, and deletes what expired at start", async () => {
    const { config, env, dbPath } = isolated(server.url, "retention", dir, { RETENTION: "1d" });
    const day = 86_400_000;
    // Samples stored before, without retention: one three days old, one of the last hour.
    const before = openSqliteStore(dbPath);
    const old = rowsOfEnvelope({
      key: "series",
      id: "before",
      receivedAt: Date.now(),
      metrics: [
        { name: "kept.before", value: 1, timestamp: Date.now() - 3 * day },
        { name: "kept.before", value: 2, timestamp: Date.now() - 3_600_000 },
      ],
    });
    expect(await before.insert(old)).toBe(2);
    await before.close();

    const port = await fleet.ready(fleet.start(env), config);
    await waitFor("retention at start", () => (readRows(dbPath).length === 1 ? true : undefined));
    expect(readRows(dbPath).map((r) => r.value)).toEqual([2]);
    expect(await workerMetric(port, "worker_samples_deleted_total")).toBe(1);

    const { handler, close } = realIngestHandler(config);
    const body = JSON.stringify({
      data: [
        { name: "late", value: 1, timestamp: Date.now() - 2 * day },
        { name: "fresh", value: 2 },
      ],
    });
    expect((await handler(post(body))).status).toBe(202);
    await close();
    await waitFor("the fresh metric", () =>
      readRows(dbPath).some((r) => r.name === "fresh") ? true : undefined,
    );
    expect(readRows(dbPath).map((r) => r.name)).toEqual(["kept.before", "fresh"]);
    expect(await workerMetric(port, "worker_metrics_expired_total")).toBe(1);
    expect(await workerMetric(port, "worker_metrics_stored_total")).toBe(1);
  });
});
