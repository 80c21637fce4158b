import type { JetStreamManager } from "nats";
import type { Config } from "../../shared/config.ts";
import { startWorker, workerHttpPort, type Child } from "./processes.ts";
import { waitFor } from "./wait.ts";

/** The worker processes of one test file, so that each test can end them all. */
export interface WorkerFleet {
  start(env: Record<string, string>): Child;
  /** Waits for the worker's HTTP port and its consumer; resolves to the port. */
  ready(worker: Child, config: Config): Promise<number>;
  /** Forgets a worker the test ended itself. */
  forget(worker: Child): void;
  /** SIGKILLs every worker still running. */
  killAll(): Promise<void>;
}

export function workerFleet(jsm: () => JetStreamManager): WorkerFleet {
  const workers: Child[] = [];
  return {
    start(env) {
      const worker = startWorker(env);
      workers.push(worker);
      return worker;
    },
    async ready(worker, config) {
      const port = await waitFor(
        "the worker's HTTP port",
        () => workerHttpPort(worker),
        15_000,
      ).catch((err: unknown) => {
        // What the worker said tells where its start-up stopped.
        throw new Error(`${String(err)}\n--- worker output ---\n${worker.output()}`);
      });
      await waitFor("the worker's consumer", () =>
        jsm()
          .consumers.info(config.stream.name, config.consumer.name)
          .catch(() => undefined),
      );
      return port;
    },
    forget(worker) {
      workers.splice(workers.indexOf(worker), 1);
    },
    async killAll() {
      await Promise.all(workers.splice(0).map((w) => w.stop("SIGKILL", 0)));
    },
  };
}
