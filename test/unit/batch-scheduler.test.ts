import { setImmediate } from "node:timers/promises";
import type { JsMsg } from "nats";
import { afterEach, describe, expect, it, vi } from "vitest";
import { retryDelayMs, type BatchOutcome } from "../../worker/batch-processor.ts";
import { createBatchScheduler } from "../../worker/batch-scheduler.ts";
import { createHeldMessages } from "../../worker/held-messages.ts";
import type { StoreOutage } from "../../worker/store-outage.ts";
import { createWakeSignal } from "../../worker/wake-signal.ts";
import { fakeMessage, type FakeMessage } from "../helpers/fake-jetstream.ts";
import { silentLogger } from "../helpers/logger.ts";

/** A batch handed to the processor, which the test ends when it likes. */
interface Started {
  readonly messages: readonly JsMsg[];
  commit(): void;
  failForTheDatabase(): void;
  throw(err: Error): void;
}

const stored = (n: number): BatchOutcome => ({
  stored: n,
  rows: n,
  rowsAdded: n,
  deadLettered: [],
  retried: 0,
  storeError: undefined,
  storeSeconds: 0.01,
});

const retried = (n: number): BatchOutcome => ({
  ...stored(0),
  retried: n,
  storeError: new Error("connection refused"),
});

/** An outage the test ends: `waitUntilAnswers` resolves when the test says the database answers. */
function fakeOutage() {
  let answer = () => {};
  const outage = {
    down: false,
    began: 0,
    waits: 0,
    begin() {
      outage.down = true;
      outage.began++;
    },
    waitUntilAnswers() {
      outage.waits++;
      return new Promise<void>((resolve) => {
        answer = () => {
          outage.down = false;
          resolve();
        };
      });
    },
    answers: () => {
      answer();
    },
  };
  return outage satisfies StoreOutage;
}

interface Setup {
  readonly batchSize?: number;
  readonly concurrency?: number;
  readonly ackWaitMs?: number;
}

function schedulerWith(options: Setup = {}) {
  const held = createHeldMessages(options.batchSize ?? 2);
  const changed = createWakeSignal();
  const stopping = new AbortController();
  const outage = fakeOutage();
  const started: Started[] = [];
  const outcomes: [BatchOutcome, readonly JsMsg[]][] = [];
  const scheduler = createBatchScheduler({
    held,
    concurrency: options.concurrency ?? 1,
    ackWaitMs: options.ackWaitMs ?? 3000,
    processBatch: (messages) =>
      new Promise<BatchOutcome>((resolve, reject) => {
        started.push({
          messages,
          commit: () => {
            resolve(stored(messages.length));
          },
          failForTheDatabase: () => {
            resolve(retried(messages.length));
          },
          throw: reject,
        });
      }),
    onBatch: (outcome, messages) => outcomes.push([outcome, messages]),
    outage,
    changed,
    stopping: stopping.signal,
    logger: silentLogger,
  });
  return {
    held,
    outage,
    started,
    outcomes,
    scheduler,
    stopping,
    /** Holds new messages, as the puller does. */
    hold(count: number, deliveryCount = 1): FakeMessage[] {
      const messages = Array.from({ length: count }, () => fakeMessage(100, deliveryCount));
      for (const m of messages) held.add(m.msg);
      changed.notify();
      return messages;
    },
    /** Stops the loop as the consume loop does. */
    stop() {
      stopping.abort();
      changed.notify();
    },
  };
}

/** Lets the scheduler run until it waits again. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await setImmediate();
}

const msgs = (messages: readonly FakeMessage[]) => messages.map((m) => m.msg);

/** How many times each message reported progress. */
const workings = (messages: readonly FakeMessage[]) =>
  messages.map((m) => m.calls.filter((call) => call === "working").length);

afterEach(() => {
  vi.useRealTimers();
});

describe("the batch scheduler", () => {
  it("stores up to `concurrency` batches at once; the next starts when one ends", async () => {
    const s = schedulerWith({ batchSize: 2, concurrency: 2 });
    const done = s.scheduler.run();
    const messages = s.hold(6);
    await settle();
    expect(s.started.map((b) => b.messages)).toEqual([
      msgs(messages.slice(0, 2)),
      msgs(messages.slice(2, 4)),
    ]);
    s.started[1]?.commit();
    await settle();
    expect(s.started).toHaveLength(3);
    expect(s.started[2]?.messages).toEqual(msgs(messages.slice(4, 6)));
    s.stop();
    for (const batch of s.started) batch.commit();
    await done;
  });

  it("lets what arrives in the same turn join a batch that is not full", async () => {
    const s = schedulerWith({ batchSize: 10 });
    const done = s.scheduler.run();
    const first = s.hold(1);
    // The scheduler wakes for the first; the second, already read from the socket, comes out of
    // the pull's iterator a few promise turns later, and joins the first's batch.
    for (let i = 0; i < 5; i++) await Promise.resolve();
    const second = s.hold(1);
    await settle();
    expect(s.started.map((b) => b.messages)).toEqual([msgs([...first, ...second])]);
    s.stop();
    s.started[0]?.commit();
    await done;
  });

  it("hands each outcome on with its messages", async () => {
    const s = schedulerWith({ batchSize: 2 });
    const done = s.scheduler.run();
    const messages = s.hold(2);
    await settle();
    s.started[0]?.commit();
    await settle();
    expect(s.outcomes).toEqual([[stored(2), msgs(messages)]]);
    s.stop();
    await done;
  });

  it("after a batch failed for the database, starts none until the database answers", async () => {
    const s = schedulerWith({ batchSize: 2, concurrency: 2 });
    const done = s.scheduler.run();
    s.hold(4);
    await settle();
    expect(s.started).toHaveLength(2);
    s.started[0]?.failForTheDatabase();
    await settle();
    expect(s.outage.began).toBe(1);
    // The other batch is still in hand: nobody pings yet, and nothing new starts.
    s.hold(2);
    await settle();
    expect(s.started).toHaveLength(2);
    expect(s.outage.waits).toBe(0);
    s.started[1]?.failForTheDatabase();
    await settle();
    expect(s.outage.waits).toBe(1);
    expect(s.started).toHaveLength(2);

    s.outage.answers();
    await settle();
    expect(s.started).toHaveLength(3);
    s.stop();
    s.started[2]?.commit();
    await done;
  });

  it("hands back the messages of a batch whose processing failed unexpectedly", async () => {
    const s = schedulerWith({ batchSize: 2 });
    const done = s.scheduler.run();
    const messages = s.hold(2, 3);
    await settle();
    s.started[0]?.throw(new Error("bug"));
    await settle();
    for (const m of messages) expect(m.calls).toEqual([`nak ${retryDelayMs(3)}`]);
    expect(s.outage.began).toBe(0);
    s.stop();
    await done;
  });

  it("on stop, starts nothing more and ends once the batches in hand have ended", async () => {
    const s = schedulerWith({ batchSize: 2 });
    let ended = false;
    const done = s.scheduler.run().then(() => (ended = true));
    s.hold(4);
    await settle();
    expect(s.started).toHaveLength(1);
    s.stop();
    await settle();
    expect(ended).toBe(false);
    s.started[0]?.commit();
    await done;
    expect(s.started).toHaveLength(1);
    expect(s.held.count).toBe(2);
  });

  it("keeps every message in hand or held from redelivery while a slow batch is stored", async () => {
    // Only the heartbeat's timer is faked: the scheduler's turns of the event loop stay real.
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const s = schedulerWith({ batchSize: 2, ackWaitMs: 3000 });
    const stopReporting = s.scheduler.keepInProgress();
    const done = s.scheduler.run();
    const messages = s.hold(4);
    await settle();
    expect(s.started.map((b) => b.messages)).toEqual([msgs(messages.slice(0, 2))]);

    // Three ack waits into storing the first batch: each message reported progress every
    // second (a third of the ack wait), the batch being stored as well as the one held behind it.
    vi.advanceTimersByTime(9000);
    expect(workings(messages)).toEqual([9, 9, 9, 9]);

    s.started[0]?.commit();
    await settle();
    vi.advanceTimersByTime(2000);
    // The first batch has ended: only the second, now in hand, goes on reporting.
    expect(workings(messages)).toEqual([9, 9, 11, 11]);

    s.stop();
    s.started[1]?.commit();
    await done;
    stopReporting();
    vi.advanceTimersByTime(10_000);
    expect(workings(messages)).toEqual([9, 9, 11, 11]);
  });

  it("reports progress a third of the ack wait apart, and never more than once a second", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    for (const [ackWaitMs, everyMs] of [
      [30_000, 10_000],
      [1000, 1000],
    ] as const) {
      const s = schedulerWith({ batchSize: 1, ackWaitMs });
      const stopReporting = s.scheduler.keepInProgress();
      const done = s.scheduler.run();
      const messages = s.hold(1);
      await settle();
      vi.advanceTimersByTime(everyMs - 1);
      expect(workings(messages)).toEqual([0]);
      vi.advanceTimersByTime(1);
      expect(workings(messages)).toEqual([1]);
      s.stop();
      s.started[0]?.commit();
      await done;
      stopReporting();
    }
  });
});
