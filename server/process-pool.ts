/**
 * The self-hosted server as several processes (`SERVE_PROCESSES`), one server each on the same
 * port. The edge keeps no state between requests, so any process may answer any request; one
 * Node process parses on one core, and a time-series engine beside it uses them all.
 *
 * node:cluster shares the listening socket: the first process (the primary) accepts every
 * connection and hands each to a server process in turn. The primary answers nothing itself.
 * - A stop signal to the primary stops every server process the way a single server stops (the
 *   requests in flight finish, NATS is drained), and the primary exits once they all have, with
 *   the worst of their exit codes. The server processes ignore the signals themselves: a Ctrl-C
 *   reaches the whole process group, and it must stop each of them once, not twice.
 * - A server process that exits on its own (a crash, or a start that failed: the port taken, NATS
 *   unreachable) stops the others (those not listening yet are killed: they have nothing in
 *   flight) and the primary exits 1, for whatever supervises it (Docker's
 *   restart policy, systemd) to start the whole server again, as it would a single process.
 * - When the primary dies (SIGKILL), node:cluster ends each server process at once.
 */
import cluster, { type Worker } from "node:cluster";
import type { Logger } from "../shared/logger.ts";
import { exitWhenStopped, onStopSignals } from "../shared/stop-signals.ts";

/** What the primary sends a server process to make it stop. */
const STOP = "stop";

/** Whether this process is one of a pool's server processes. */
export function isPoolProcess(): boolean {
  return cluster.isWorker;
}

/**
 * In a server process: runs `stop` once, when the primary asks, and exits with its code. The
 * process's own SIGINT and SIGTERM are ignored (see above).
 */
export function onPoolStop(logger: Logger, stop: (signal: string) => Promise<number>): void {
  const ignore = () => undefined;
  process.on("SIGINT", ignore);
  process.on("SIGTERM", ignore);
  let stopping = false;
  process.on("message", (message: unknown) => {
    if (message !== STOP || stopping) return;
    stopping = true;
    exitWhenStopped(logger, stop("SIGTERM"));
  });
}

/**
 * In the primary: starts `count` server processes (each runs this same script) and supervises
 * them until they have all exited; resolves to the exit code the primary should exit with. A
 * stop signal is a single server's (`onStopSignals`): a second one exits at once, and node:cluster
 * then ends every server process.
 */
export function runProcessPool(count: number, logger: Logger): Promise<number> {
  const workers = new Set<Worker>();
  /** Those that listen: they stop when asked (`onPoolStop` is set up as they start to listen). */
  const listening = new WeakSet<Worker>();
  let stopping = false;
  let worst = 0;

  const stopAll = () => {
    stopping = true;
    for (const worker of workers) {
      if (listening.has(worker) && worker.isConnected()) worker.send(STOP);
      // Not listening yet: it has nothing in flight, and might miss the message.
      else worker.process.kill("SIGKILL");
    }
  };

  const done = new Promise<number>((resolve) => {
    cluster.on("listening", (worker) => listening.add(worker));
    cluster.on("exit", (worker, code, signal) => {
      workers.delete(worker);
      // The code is null (whatever the types say) when a signal ended it; one killed by a stop
      // before it listened ended as it should.
      if (code !== 0 && listening.has(worker)) worst = 1;
      if (!stopping) {
        logger.error(
          { pid: worker.process.pid, code, signal },
          "a server process exited; stopping the others",
        );
        worst = 1;
        stopAll();
      }
      if (workers.size === 0) resolve(worst);
    });
  });
  onStopSignals(logger, (signal) => {
    logger.info({ signal, processes: workers.size }, "stopping");
    stopAll();
    return done;
  });
  for (let i = 0; i < count; i++) workers.add(cluster.fork());
  logger.info({ processes: count }, "started server processes");
  return done;
}
