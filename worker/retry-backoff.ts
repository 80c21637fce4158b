import { setTimeout as sleep } from "node:timers/promises";

/**
 * How long to wait after the `failures`-th failure in a row: 0.5 s, doubling up to 10 s. Long
 * enough not to hammer a server that is restarting, short enough to resume soon after it is back.
 */
export function backoffMs(failures: number): number {
  return Math.min(10_000, 250 * 2 ** failures);
}

/** Waits `ms`, or less when `stopping` aborts meanwhile: a stop never waits for a backoff. */
export function pauseUnlessStopped(ms: number, stopping: AbortSignal): Promise<void> {
  return sleep(ms, undefined, { signal: stopping }).catch(() => undefined);
}

/**
 * Calls `attempt` until it resolves, waiting `backoffMs` after each failure (told to
 * `onFailure`). Gives up when `stopping` aborts; resolves to whether an attempt succeeded.
 */
export async function retryUntilStopped(
  attempt: () => Promise<void>,
  stopping: AbortSignal,
  onFailure: (err: unknown) => void = () => undefined,
): Promise<boolean> {
  for (let failures = 1; !stopping.aborted; failures++) {
    try {
      await attempt();
      return true;
    } catch (err) {
      onFailure(err);
      await pauseUnlessStopped(backoffMs(failures), stopping);
    }
  }
  return false;
}
