import { describe, expect, it } from "vitest";
import { backoffMs, pauseUnlessStopped, retryUntilStopped } from "../../worker/retry-backoff.ts";

describe("the backoff", () => {
  it("waits 0.5 s after a first failure, doubling up to 10 s", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(backoffMs)).toEqual([
      500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000,
    ]);
  });

  it("pauses no longer once the loop stops", async () => {
    const stopping = new AbortController();
    const started = performance.now();
    const paused = pauseUnlessStopped(60_000, stopping.signal);
    stopping.abort();
    await paused;
    expect(performance.now() - started).toBeLessThan(1000);
    // Already stopped: no pause at all.
    await pauseUnlessStopped(60_000, stopping.signal);
  });

  it("tries again after a failure, after the first backoff", async () => {
    const failures: unknown[] = [];
    let attempts = 0;
    const started = performance.now();
    const succeeded = await retryUntilStopped(
      () => (++attempts === 1 ? Promise.reject(new Error("down")) : Promise.resolve()),
      new AbortController().signal,
      (err) => failures.push(err),
    );
    expect(succeeded).toBe(true);
    expect(attempts).toBe(2);
    expect(failures).toEqual([new Error("down")]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(backoffMs(1) - 20);
  });

  it("gives up when the loop stops, and tries nothing once stopped", async () => {
    const stopping = new AbortController();
    let attempts = 0;
    const retrying = retryUntilStopped(() => {
      attempts++;
      return Promise.reject(new Error("down"));
    }, stopping.signal);
    stopping.abort();
    expect(await retrying).toBe(false);
    expect(attempts).toBe(1);
    expect(await retryUntilStopped(() => Promise.resolve(), stopping.signal)).toBe(false);
  });
});
