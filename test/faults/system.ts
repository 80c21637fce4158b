import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "nats";
import pg from "pg";
import { loadConfig, type Config } from "../../shared/config.ts";
import { ensureStreams } from "../../shared/stream-setup.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { startWorker, type Child } from "../helpers/processes.ts";
import { startServe, type ServeProcess } from "../helpers/serve.ts";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.ts";
import { waitFor } from "../helpers/wait.ts";
import type { NatsSetup } from "./nats-nodes.ts";
import type { StoredMetric } from "./reconcile.ts";

/**
 * The whole system for one scenario: the given NATS, a database of its own (a SQLite file, or a
 * PostgreSQL database reached directly or through a proxy that can cut it), the self-hosted
 * ingest server and worker processes, all started as `npm run serve` and `npm run worker` do.
 */
export interface System {
  readonly config: Config;
  readonly env: Readonly<Record<string, string>>;
  readonly serve: ServeProcess;
  readonly workers: Child[];
  readonly database: "SQLite" | "PostgreSQL";
  /** The proxy between the workers and PostgreSQL, when asked for. */
  readonly dbProxy: TcpProxy | undefined;
  /** The proxies between the ingest server and NATS and between the workers and NATS. */
  readonly natsProxies: { serve: TcpProxy; worker: TcpProxy } | undefined;
  /** A connection of the test's own, to every node. */
  readonly nc: NatsConnection;
  /** Starts one more worker and waits for its "worker started" line. */
  startWorker(extraEnv?: Record<string, string>): Promise<Child>;
  rows(): Promise<StoredMetric[]>;
  /** How many rows the metrics table holds (0 before it exists). */
  count(): Promise<number>;
  /** ms until the row count passes `than` (null if it did not within `timeoutMs`). */
  rowsGrowBeyond(than: number, timeoutMs?: number): Promise<number | null>;
  /** Messages still in the stream (the backlog: work-queue retention drops what was acked). */
  backlog(): Promise<number>;
  /** The tail of every process's output, for a failure message. */
  logs(): string;
  stop(): Promise<void>;
}

export interface SystemOptions {
  readonly nats: NatsSetup;
  readonly database: "sqlite" | "postgres";
  readonly dbProxy?: boolean;
  /** A command that execs each worker (into a memory cgroup, say). */
  readonly workerPrefix?: readonly string[];
  /** The ingest server and the workers reach the (first) NATS node through proxies of their own. */
  readonly natsProxies?: boolean;
  readonly workers?: number;
  /** The folder of the SQLite file (default: a temporary folder of the system's own). */
  readonly sqliteDir?: string;
  /** The tablespace of the PostgreSQL database (default: the server's own). */
  readonly pgTablespace?: string;
  /** Variables for the server and the workers. */
  readonly env?: Record<string, string>;
}

export async function startSystem(options: SystemOptions): Promise<System> {
  const dir = await mkdtemp(join(tmpdir(), "faults-"));
  const cleanups: (() => Promise<void>)[] = [() => rm(dir, { recursive: true, force: true })];
  const stopAll = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  };
  try {
    let databaseUrl = `sqlite:${join(options.sqliteDir ?? dir, "metrics.db")}`;
    let pgDb: TestDatabase | undefined;
    let dbProxy: TcpProxy | undefined;
    if (options.database === "postgres") {
      const db = await createTestDatabase(
        options.pgTablespace === undefined ? {} : { tablespace: options.pgTablespace },
      );
      pgDb = db;
      cleanups.push(() => db.drop());
      const url = new URL(db.url);
      if (options.dbProxy === true) {
        const proxy = await startTcpProxy(url.hostname, Number(url.port || 5432));
        dbProxy = proxy;
        cleanups.push(() => proxy.close());
        url.port = String(proxy.port);
      }
      databaseUrl = url.toString();
    }
    const env: Record<string, string> = {
      NATS_URL: options.nats.urls,
      DATABASE_URL: databaseUrl,
      LOG_LEVEL: "info",
      ...options.env,
    };
    const config = loadConfig(env);
    let natsProxies: System["natsProxies"];
    const serveEnv = { ...env };
    const workerEnv = { ...env };
    if (options.nats.nodes.length > 0 && options.natsProxies === true) {
      const node = options.nats.nodes[0];
      if (node === undefined) throw new Error("no NATS node");
      const serve = await startTcpProxy(node.host, node.port);
      cleanups.push(() => serve.close());
      const worker = await startTcpProxy(node.host, node.port);
      cleanups.push(() => worker.close());
      natsProxies = { serve, worker };
      serveEnv["NATS_URL"] = `nats://127.0.0.1:${serve.port}`;
      workerEnv["NATS_URL"] = `nats://127.0.0.1:${worker.port}`;
    }

    const nc = await connect({
      servers: options.nats.urls.split(","),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    cleanups.push(() => nc.close());
    // The streams exist before any request, whether or not a worker runs yet.
    await waitFor(
      "the streams",
      async () => {
        await ensureStreams(await nc.jetstreamManager({ timeout: 2000 }), config);
        return true;
      },
      30_000,
    ).catch((err: unknown) => {
      const logs = options.nats.nodes.map((n) => `--- nats ${n.name} ---\n${n.output()}`);
      throw new Error(`${String(err)}\n${logs.join("\n")}`, { cause: err });
    });

    const workers: Child[] = [];
    cleanups.push(async () => {
      await Promise.all(workers.map((w) => w.stop("SIGKILL", 0)));
    });
    const addWorker = async (extra: Record<string, string> = {}) => {
      const w = startWorker({ ...workerEnv, ...extra }, options.workerPrefix);
      workers.push(w);
      await waitFor(
        "the worker's start",
        () => {
          if (w.process.exitCode !== null) throw new Error(`worker exited:\n${w.output()}`);
          return w.output().includes('"worker started"') ? true : undefined;
        },
        30_000,
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}\n--- worker output ---\n${w.output()}`, { cause: err });
      });
      return w;
    };
    for (let i = 0; i < (options.workers ?? 1); i++) await addWorker();

    const serve = await startServe(serveEnv);
    cleanups.push(async () => {
      await serve.child.stop("SIGKILL", 0);
    });

    const sqlitePath = databaseUrl.slice("sqlite:".length);
    const rows =
      pgDb === undefined
        ? () => Promise.resolve(sqliteRows(sqlitePath))
        : () => postgresRows(pgDb.url);
    const count =
      pgDb === undefined
        ? () => Promise.resolve(sqliteCount(sqlitePath))
        : () => postgresCount(pgDb.url);
    return {
      config,
      env,
      serve,
      workers,
      database: options.database === "postgres" ? "PostgreSQL" : "SQLite",
      dbProxy,
      natsProxies,
      nc,
      startWorker: addWorker,
      rows,
      count,
      async rowsGrowBeyond(than, timeoutMs = 60_000) {
        const start = Date.now();
        while (Date.now() - start < timeoutMs) {
          if ((await count().catch(() => 0)) > than) return Date.now() - start;
          await sleep(100);
        }
        return null;
      },
      async backlog() {
        const jsm = await nc.jetstreamManager({ timeout: 2000 });
        return (await jsm.streams.info(config.stream.name)).state.messages;
      },
      logs() {
        const tail = (s: string) => s.split("\n").slice(-40).join("\n");
        return [
          `--- ingest server ---\n${tail(serve.child.output())}`,
          ...workers.map((w, i) => `--- worker ${i + 1} ---\n${tail(w.output())}`),
          ...options.nats.nodes.map((n) => `--- nats ${n.name} ---\n${tail(n.output())}`),
        ].join("\n");
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function identity(tags: string): StoredMetric {
  const t = JSON.parse(tags) as { req?: string; i?: string };
  return { req: t.req, index: t.i };
}

function sqliteRows(path: string): StoredMetric[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const rows = db.prepare("SELECT tags FROM metrics").all() as unknown as { tags: string }[];
    return rows.map((r) => identity(r.tags));
  } catch (err) {
    if (String(err).includes("no such table")) return [];
    throw err;
  } finally {
    db.close();
  }
}

function sqliteCount(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const row = db.prepare("SELECT count(*) AS n FROM metrics").get() as { n: number };
    return row.n;
  } catch (err) {
    if (String(err).includes("no such table")) return 0;
    throw err;
  } finally {
    db.close();
  }
}

async function postgresCount(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    const res = await client.query<{ n: string }>("SELECT count(*) AS n FROM metrics");
    return Number(res.rows[0]?.n ?? 0);
  } catch (err) {
    if (String(err).includes("does not exist")) return 0;
    throw err;
  } finally {
    await client.end();
  }
}

async function postgresRows(url: string): Promise<StoredMetric[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    const res = await client.query<{ tags: string }>("SELECT tags::text AS tags FROM metrics");
    return res.rows.map((r) => identity(r.tags));
  } catch (err) {
    if (String(err).includes("does not exist")) return [];
    throw err;
  } finally {
    await client.end();
  }
}
