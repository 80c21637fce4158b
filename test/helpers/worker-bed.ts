import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import type { Config } from "../../shared/config.ts";
import { isolated } from "./isolated.ts";
import { startNatsServer, type NatsServer } from "./nats-server.ts";
import { startWorker, type Child } from "./processes.ts";
import { waitFor } from "./wait.ts";

/**
 * What a test file of the worker process runs against: a private nats-server, a connection to
 * it, a temporary directory, and at most one worker process at a time, stopped after each test
 * (a worker that does not exit 0 on SIGTERM fails the test). Registers its own hooks.
 */
export interface WorkerBed {
  readonly server: NatsServer;
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly dir: string;
  /** A configuration of the test's own (stream, consumer, SQLite file), ack wait 2 s. */
  isolated(name: string): ReturnType<typeof isolated>;
  /** Starts the worker process with `env`; it is stopped after the test. */
  startWorker(env: Record<string, string>): Child;
  /** Starts the worker and waits until its consumer exists. */
  startedWorker(config: Config, env: Record<string, string>): Promise<Child>;
}

export function workerBed(dirPrefix: string): WorkerBed {
  let server: NatsServer | undefined;
  let nc: NatsConnection | undefined;
  let jsm: JetStreamManager | undefined;
  let dir: string | undefined;
  let worker: Child | undefined;
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("the worker bed is used before its beforeAll ran");
    return value;
  };

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    jsm = await nc.jetstreamManager();
    dir = await mkdtemp(join(tmpdir(), dirPrefix));
  });

  afterEach(async () => {
    const code = await worker?.stop();
    worker = undefined;
    // A worker that does not stop cleanly on SIGTERM is a failure of its own.
    if (code !== undefined) expect(code).toBe(0);
  });

  afterAll(async () => {
    await nc?.close();
    await server?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const bed: WorkerBed = {
    get server() {
      return ready(server);
    },
    get nc() {
      return ready(nc);
    },
    get jsm() {
      return ready(jsm);
    },
    get dir() {
      return ready(dir);
    },
    isolated: (name) =>
      isolated(ready(server).url, name, ready(dir), { CONSUMER_ACK_WAIT_SECONDS: "2" }),
    startWorker(env) {
      worker = startWorker(env);
      return worker;
    },
    async startedWorker(config, env) {
      const started = bed.startWorker(env);
      await waitFor("the worker's consumer", () =>
        bed.jsm.consumers.info(config.stream.name, config.consumer.name).catch(() => undefined),
      );
      return started;
    },
  };
  return bed;
}
