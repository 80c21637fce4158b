import type { Logger } from "../shared/logger.ts";
import type { MetricStore } from "./metric-store.ts";

/** How often retention runs after the run at start. */
export const RETENTION_INTERVAL_MS = 15 * 60_000;

export interface RetentionOptions {
  readonly store: MetricStore;
  readonly retentionMs: number;
  readonly logger: Logger;
  readonly intervalMs?: number;
  readonly now?: () => number;
  /** Told how many samples each run deleted. */
  readonly onDeleted?: (samples: number) => void;
}

/**
 * Deletes the samples older than the retention window now and then every `intervalMs`, one run
 * at a time. A failed run is logged and the next one tries again: retention must never stop the
 * worker from storing. Resolves `stop` once a run under way has finished.
 */
export function startRetention(options: RetentionOptions): { stop(): Promise<void> } {
  const { store, retentionMs, logger } = options;
  const enforce = store.enforceRetention?.bind(store);
  if (enforce === undefined) return { stop: () => Promise.resolve() };
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = () => {
    if (stopped || running !== undefined) return;
    const cutoffMs = (options.now ?? Date.now)() - retentionMs;
    const started = performance.now();
    running = enforce(cutoffMs)
      .then((deleted) => {
        options.onDeleted?.(deleted);
        const seconds = Math.round(performance.now() - started) / 1000;
        logger.info({ cutoff: new Date(cutoffMs).toISOString(), deleted, seconds }, "retention");
      })
      .catch((err: unknown) => {
        logger.error({ err }, "retention failed; it runs again later");
      })
      .finally(() => {
        running = undefined;
      });
  };
  run();
  const timer = setInterval(run, options.intervalMs ?? RETENTION_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
