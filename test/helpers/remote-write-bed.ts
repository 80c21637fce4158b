import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll } from "vitest";
import { isolated } from "./isolated.ts";
import { startNatsServer } from "./nats-server.ts";
import { PATHS } from "./payloads.ts";
import { startWorker, workerHttpPort, type Child } from "./processes.ts";
import { postAccepted } from "./requests.ts";
import { startServe, type ServeProcess } from "./serve.ts";
import { waitFor } from "./wait.ts";

/**
 * The whole pipe into a remote-write receiver, for a test file: a private nats-server, a worker
 * with `DATABASE_URL=remote-write+<receiverUrl()>` and `npm run serve` in front, kept for the
 * whole file. Registers its own hooks: call it after the hook that starts the receiver, which
 * then runs first and is stopped last.
 */
export interface RemoteWriteBed {
  readonly env: Record<string, string>;
  readonly serve: ServeProcess;
  readonly nc: NatsConnection;
  /** The worker now running (`startWorker` replaces it). */
  readonly worker: Child;
  readonly workerPort: number;
  /** Starts a worker (after the test stopped the last one) and waits for its HTTP port. */
  startWorker(): Promise<void>;
  /** POSTs through `npm run serve`, expecting a 2xx. */
  readonly post: (
    path: string,
    body: string | Uint8Array,
    headers: Record<string, string>,
  ) => Promise<void>;
  /** POSTs JSON API metrics, expecting a 2xx. */
  readonly postJson: (metrics: unknown[]) => Promise<void>;
}

export function remoteWriteBed(
  name: string,
  receiverUrl: () => string,
  extraEnv: Record<string, string> = {},
): RemoteWriteBed {
  const cleanups: (() => Promise<unknown>)[] = [];
  let env: Record<string, string> | undefined;
  let serve: ServeProcess | undefined;
  let nc: NatsConnection | undefined;
  let worker: Child | undefined;
  let workerPort: number | undefined;
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("the remote-write bed is used before it started");
    return value;
  };

  const bed: RemoteWriteBed = {
    get env() {
      return ready(env);
    },
    get serve() {
      return ready(serve);
    },
    get nc() {
      return ready(nc);
    },
    get worker() {
      return ready(worker);
    },
    get workerPort() {
      return ready(workerPort);
    },
    async startWorker() {
      const child = startWorker(bed.env);
      worker = child;
      workerPort = await waitFor("the worker's HTTP port", () => workerHttpPort(child), 20_000);
    },
    post: (path, body, headers) => postAccepted(bed.serve, path, body, headers),
    postJson: (metrics) =>
      bed.post(PATHS.json, JSON.stringify({ data: metrics }), {
        "Content-Type": "application/json",
      }),
  };

  beforeAll(async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.stop());
    const dir = await mkdtemp(join(tmpdir(), `rw-${name}-`));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    env = isolated(nats.url, name, dir, {
      DATABASE_URL: `remote-write+${receiverUrl()}`,
      ...extraEnv,
    }).env;
    await bed.startWorker();
    cleanups.push(() => bed.worker.stop());
    const server = await startServe(env);
    serve = server;
    cleanups.push(() => server.child.stop());
    const connection = await connect({ servers: nats.url });
    nc = connection;
    cleanups.push(() => connection.close());
  }, 60_000);

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  return bed;
}
