import { connect, type JetStreamManager, type NatsConnection } from "nats";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ensureStreams } from "../../shared/stream-setup.ts";
import { endPool } from "../../worker/end-pool.ts";
import { realIngestHandler } from "../helpers/ingest.ts";
import { isolated } from "../helpers/isolated.ts";
import { loadKey, sendLoad } from "../helpers/load.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { workerMetric } from "../helpers/processes.ts";
import { workerFleet } from "../helpers/worker-fleet.ts";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.ts";
import { waitFor } from "../helpers/wait.ts";

/** The worker on the real PostgreSQL: shared consumers, a crash, and the database going away. */
let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let db: TestDatabase;
let pool: pg.Pool;
const fleet = workerFleet(() => jsm);

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await nc.jetstreamManager();
  db = await createTestDatabase();
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
});

afterEach(async () => {
  await fleet.killAll();
  // Each test stores into its own table's worth of rows: start from an empty one.
  await pool.query("TRUNCATE samples, series").catch(() => undefined);
});

afterAll(async () => {
  await endPool(pool);
  await db.drop();
  await nc.close();
  await server.stop();
});

/** `<name>/<tag i>` of every stored sample: what `sendLoad` sent. */
async function storedKeys(): Promise<string[]> {
  const { rows } = await pool.query<{ name: string; tags: string }>(
    "SELECT name, tags::text AS tags FROM metrics",
  );
  return rows.map(loadKey);
}

async function expectExactlyStored(ids: readonly string[], perRequest: number) {
  const expected = ids.length * perRequest;
  await waitFor(
    `${expected} rows`,
    async () => ((await storedKeys()).length >= expected ? true : undefined),
    90_000,
  );
  const keys = await storedKeys();
  expect(keys).toHaveLength(expected);
  const unique = new Set(keys);
  expect(unique.size).toBe(expected);
  for (const id of ids)
    for (let i = 0; i < perRequest; i++) expect(unique.has(`load.${id}/${i}`)).toBe(true);
}

describe("worker faults on PostgreSQL", () => {
  it("two workers share the consumer: 10,000 metrics make exactly 10,000 rows", async () => {
    const { config, env } = isolated(server.url, "pgshared", "/nonexistent", {
      DATABASE_URL: db.url,
      WORKER_BATCH_SIZE: "10",
    });
    const [portA, portB] = [
      await fleet.ready(fleet.start(env), config),
      await fleet.ready(fleet.start(env), config),
    ];
    const { handler, close } = realIngestHandler(config);
    const ids = await sendLoad(handler, { requests: 200, perRequest: 50 });
    await close();

    await expectExactlyStored(ids, 50);
    const storedA = await workerMetric(portA, "worker_metrics_stored_total");
    const storedB = await workerMetric(portB, "worker_metrics_stored_total");
    expect(storedA).toBeGreaterThan(0);
    expect(storedB).toBeGreaterThan(0);
    expect(storedA + storedB).toBe(10_000);
  }, 120_000);

  it("a worker SIGKILLed mid-backlog and restarted loses nothing and stores nothing twice", async () => {
    const { config, env } = isolated(server.url, "pgkilled", "/nonexistent", {
      DATABASE_URL: db.url,
      WORKER_BATCH_SIZE: "20",
      CONSUMER_ACK_WAIT_SECONDS: "2",
    });
    await ensureStreams(jsm, config);
    const { handler, close } = realIngestHandler(config);
    const ids = await sendLoad(handler, { requests: 2000, perRequest: 20 });
    await close();

    const first = fleet.start(env);
    await fleet.ready(first, config);
    await waitFor("the first rows", async () =>
      (await storedKeys()).length > 0 ? true : undefined,
    );
    await first.stop("SIGKILL", 0);
    fleet.forget(first);
    const atKill = (await storedKeys()).length;
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(40_000);

    await fleet.ready(fleet.start(env), config);
    await expectExactlyStored(ids, 20);
  }, 120_000);

  it("PostgreSQL unreachable for seconds under load: nothing dead-lettered, everything stored after", async () => {
    const target = new URL(db.url);
    const proxy: TcpProxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    const { config, env } = isolated(server.url, "pgdown", "/nonexistent", {
      DATABASE_URL: viaProxy.toString(),
      WORKER_BATCH_SIZE: "20",
      PG_STATEMENT_TIMEOUT_MS: "2000",
    });
    try {
      const port = await fleet.ready(fleet.start(env), config);
      const { handler, close } = realIngestHandler(config);
      const first = await sendLoad(handler, { requests: 100, perRequest: 10 });
      await expectExactlyStored(first, 10);

      await proxy.cut();
      // Load while the database is away: accepted by the edge, held in the stream.
      const during = await sendLoad(handler, { requests: 300, perRequest: 10 });
      const notReady = await waitFor("/readyz to say the database is down", async () => {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        return res.status === 503
          ? ((await res.json()) as { checks: Record<string, string> })
          : undefined;
      });
      expect(notReady.checks["database"]).toMatch(/^down/);
      await new Promise((resolve) => setTimeout(resolve, 5000));
      await proxy.restore();
      const after = await sendLoad(handler, { requests: 100, perRequest: 10 });
      await close();

      await expectExactlyStored([...first, ...during, ...after], 10);
      expect((await jsm.streams.info(config.stream.dlqName)).state.messages).toBe(0);
      expect(await workerMetric(port, 'worker_events_total{event="paused"}')).toBeGreaterThan(0);
      expect(await workerMetric(port, 'worker_events_total{event="resumed"}')).toBeGreaterThan(0);
      expect(await workerMetric(port, "worker_metrics_stored_total")).toBe(5000);
      await waitFor("/readyz to say ready again", async () => {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        return res.status === 200 ? true : undefined;
      });
    } finally {
      await proxy.close();
    }
  }, 120_000);
});
