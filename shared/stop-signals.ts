import type { Logger } from "./logger.ts";

/**
 * A long-running process's stop: on the first SIGINT or SIGTERM, `stop` runs and the process
 * exits with the code it resolves to (1 if it throws); a second signal exits 1 at once.
 */
export function onStopSignals(logger: Logger, stop: (signal: string) => Promise<number>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal; exiting now");
      process.exit(1);
    }
    stopping = true;
    exitWhenStopped(logger, stop(signal));
  };
  process.on("SIGINT", handle);
  process.on("SIGTERM", handle);
}

/** Exits with the code `stopped` resolves to, or with 1 (logged) when it rejects. */
export function exitWhenStopped(logger: Logger, stopped: Promise<number>): void {
  stopped.then(
    (code) => process.exit(code),
    (err: unknown) => {
      logger.error({ err }, "stopping failed");
      process.exit(1);
    },
  );
}
