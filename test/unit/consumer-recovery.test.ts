import { setImmediate } from "node:timers/promises";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { createConsumerRecovery } from "../../worker/consumer-recovery.ts";
import { backoffMs, pauseUnlessStopped } from "../../worker/retry-backoff.ts";
import { createWakeSignal } from "../../worker/wake-signal.ts";
import { apiError, fakeConsumer } from "../helpers/fake-jetstream.ts";
import { silentLogger } from "../helpers/logger.ts";

// The pauses after a failed pull are recorded, not waited: what matters is how long each is.
vi.mock("../../worker/retry-backoff.ts", async (importOriginal) => ({
  ...(await importOriginal<typeof import("../../worker/retry-backoff.ts")>()),
  pauseUnlessStopped: vi.fn(() => Promise.resolve()),
}));
const pauses = vi.mocked(pauseUnlessStopped);
beforeEach(() => {
  pauses.mockClear();
});

const CONSUMER_NOT_FOUND = 10014;
const STREAM_NOT_FOUND = 10059;

function recoveryWith(recreate: () => Promise<void> = () => Promise.resolve()) {
  const fake = fakeConsumer();
  const events: string[] = [];
  const changed = createWakeSignal();
  const stopping = new AbortController();
  let recreated = 0;
  const recovery = createConsumerRecovery({
    consumer: () => fake.consumer,
    async recreateConsumer() {
      recreated++;
      await recreate();
    },
    changed,
    stopping: stopping.signal,
    onEvent: (event) => events.push(event),
    logger: silentLogger,
  });
  return { recovery, fake, events, changed, stopping, recreated: () => recreated };
}

describe("recovering from a failed pull", () => {
  it.each([
    ["consumer", CONSUMER_NOT_FOUND],
    ["stream", STREAM_NOT_FOUND],
  ])("recreates the consumer when the server says the %s is gone", async (_, code) => {
    const { recovery, fake, events, recreated } = recoveryWith();
    fake.info = () => Promise.reject(apiError(code));
    await recovery.recover(new Error("pull failed"));
    expect(recreated()).toBe(1);
    expect(events).toEqual(["consumer_lost", "consumer_recreated"]);
  });

  it("tries recreating the consumer again until it works", async () => {
    let attempts = 0;
    const { recovery, fake, events, recreated } = recoveryWith(() =>
      ++attempts === 1 ? Promise.reject(new Error("no JetStream yet")) : Promise.resolve(),
    );
    fake.info = () => Promise.reject(apiError(CONSUMER_NOT_FOUND));
    await recovery.recover(new Error("pull failed"));
    expect(recreated()).toBe(2);
    expect(events).toEqual(["consumer_lost", "consumer_recreated"]);
  });

  it("pauses, longer after each failure in a row, when the consumer is still there", async () => {
    const { recovery, events, recreated } = recoveryWith();
    await recovery.recover(new Error("timeout"));
    await recovery.recover(new Error("timeout"));
    await recovery.recover(new Error("timeout"));
    expect(pauses.mock.calls.map(([ms]) => ms)).toEqual([backoffMs(1), backoffMs(2), backoffMs(3)]);
    expect(recreated()).toBe(0);
    expect(events).toEqual(["pull_failed", "pull_failed", "pull_failed"]);
  });

  it("pauses the shortest time again after a pull that ended well", async () => {
    const { recovery } = recoveryWith();
    await recovery.recover(new Error("timeout"));
    await recovery.recover(new Error("timeout"));
    recovery.succeeded();
    await recovery.recover(new Error("timeout"));
    expect(pauses.mock.calls.map(([ms]) => ms)).toEqual([backoffMs(1), backoffMs(2), backoffMs(1)]);
  });

  it("pauses only until the loop stops", async () => {
    const { recovery, stopping } = recoveryWith();
    await recovery.recover(new Error("timeout"));
    expect(pauses.mock.calls[0]?.[1]).toBe(stopping.signal);
  });

  it("runs one recovery at a time, whichever pulls failed, and wakes the puller after", async () => {
    const { recovery, fake, events, changed } = recoveryWith();
    let infos = 0;
    fake.info = () => {
      infos++;
      return Promise.reject(apiError(CONSUMER_NOT_FOUND));
    };
    let woken = false;
    void changed.wait().then(() => (woken = true));
    const first = recovery.recover(new Error("pull 1 failed"));
    const second = recovery.recover(new Error("pull 2 failed"));
    expect(second).toBe(first);
    expect(recovery.running).toBe(first);
    await first;
    await setImmediate();
    expect(recovery.running).toBeUndefined();
    expect(infos).toBe(1);
    expect(events).toEqual(["consumer_lost", "consumer_recreated"]);
    expect(woken).toBe(true);
  });
});
