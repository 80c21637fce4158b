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
    stop(signal).then(
      (code) => process.exit(code),
      (err: unknown) => {
        logger.error({ err }, "stopping failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", handle);
  process.on("SIGTERM", handle);
}
