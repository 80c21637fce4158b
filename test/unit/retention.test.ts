import { describe, expect, it } from "vitest";
import { createLogger } from "../../shared/logger.ts";
import type { MetricStore } from "../../worker/metric-store.ts";
import { startRetention } from "../../worker/retention.ts";

const logger = createLogger("test", "silent");

function storeRecording(enforce: (cutoffMs: number) => Promise<number>) {
  const cutoffs: number[] = [];
  const store: MetricStore = {
    insert: () => Promise.resolve(0),
    ping: () => Promise.resolve(),
    close: () => Promise.resolve(),
    enforceRetention: (cutoffMs) => {
      cutoffs.push(cutoffMs);
      return enforce(cutoffMs);
    },
  };
  return { store, cutoffs };
}

describe("startRetention", () => {
  it("runs at once with the cutoff RETENTION before now, then every interval", async () => {
    const { store, cutoffs } = storeRecording(() => Promise.resolve(3));
    const deleted: number[] = [];
    const retention = startRetention({
      store,
      retentionMs: 1000,
      logger,
      intervalMs: 20,
      now: () => 50_000,
      onDeleted: (n) => deleted.push(n),
    });
    await new Promise((resolve) => setTimeout(resolve, 70));
    await retention.stop();
    expect(cutoffs[0]).toBe(49_000);
    expect(cutoffs.length).toBeGreaterThanOrEqual(2);
    expect(deleted.every((n) => n === 3)).toBe(true);
  });

  it("runs one at a time, and stop waits for the run under way", async () => {
    let finish: () => void = () => undefined;
    let finished = false;
    const { store, cutoffs } = storeRecording(
      () =>
        new Promise((resolve) => {
          finish = () => {
            finished = true;
            resolve(0);
          };
        }),
    );
    const retention = startRetention({ store, retentionMs: 1, logger, intervalMs: 5 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(cutoffs).toHaveLength(1);
    const stopped = retention.stop();
    setTimeout(() => {
      finish();
    }, 10);
    await stopped;
    expect(finished).toBe(true);
  });

  it("goes on after a failed run", async () => {
    let calls = 0;
    const { store } = storeRecording(() => {
      calls++;
      return calls === 1 ? Promise.reject(new Error("disk full")) : Promise.resolve(1);
    });
    const retention = startRetention({ store, retentionMs: 1, logger, intervalMs: 10 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await retention.stop();
    expect(calls).toBeGreaterThanOrEqual(2);
  });
});
