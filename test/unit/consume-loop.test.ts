import { setImmediate } from "node:timers/promises";
import type { JetStreamClient, JsMsg } from "nats";
import { afterEach, describe, expect, it, vi } from "vitest";
import { retryDelayMs, type BatchOutcome } from "../../worker/batch-processor.ts";
import { startConsumeLoop, type ConsumeLoopOptions } from "../../worker/consume-loop.ts";
import { PULLS_AT_ONCE } from "../../worker/message-puller.ts";
import {
  apiError,
  fakeConsumer,
  fakeMessage,
  type FakeConsumer,
} from "../helpers/fake-jetstream.ts";
import { silentLogger } from "../helpers/logger.ts";

/** How the parts are wired together; each part has its own unit tests. */

const outcome = (n: number, storeError?: Error): BatchOutcome => ({
  stored: storeError ? 0 : n,
  rows: storeError ? 0 : n,
  rowsAdded: storeError ? 0 : n,
  deadLettered: [],
  retried: storeError ? n : 0,
  storeError,
  storeSeconds: 0.01,
});

async function loopWith(
  processBatch: ConsumeLoopOptions["processBatch"],
  more: Partial<ConsumeLoopOptions> = {},
) {
  const consumers: FakeConsumer[] = [];
  const js = {
    consumers: {
      get() {
        const fake = fakeConsumer();
        consumers.push(fake);
        return Promise.resolve(fake.consumer);
      },
    },
  } as unknown as JetStreamClient;
  const events: string[] = [];
  const loop = await startConsumeLoop({
    js,
    stream: "METRICS",
    consumer: "worker",
    batchSize: 1,
    concurrency: 1,
    maxPayload: () => 1024 * 1024,
    ackWaitMs: 30_000,
    processBatch,
    pingStore: () => Promise.resolve(),
    recreateConsumer: () => Promise.resolve(),
    onEvent: (event) => events.push(event),
    logger: silentLogger,
    ...more,
  });
  return { loop, consumers, events };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await setImmediate();
}

afterEach(() => {
  vi.useRealTimers();
});

describe("the consume loop", () => {
  it("stores what it pulls; a stop ends the batch in hand and hands back the rest at once", async () => {
    const batches: (readonly JsMsg[])[] = [];
    let commit = () => {};
    const { loop, consumers } = await loopWith(
      (messages) =>
        new Promise((resolve) => {
          batches.push(messages);
          commit = () => {
            resolve(outcome(messages.length));
          };
        }),
    );
    await settle();
    const [a, b] = [fakeMessage(), fakeMessage()];
    consumers[0]?.pulls[0]?.deliver(a.msg);
    consumers[0]?.pulls[0]?.deliver(b.msg);
    await settle();
    expect(batches).toEqual([[a.msg]]);

    const stopped = loop.stop();
    await settle();
    commit();
    await stopped;
    expect(batches).toEqual([[a.msg]]);
    expect(b.calls).toEqual(["nak"]);
    expect(consumers[0]?.pulls.every((pull) => pull.stopped)).toBe(true);
  });

  it("when a batch fails for the database: ends its pulls, hands back what waits, resumes once it answers", async () => {
    let pings = 0;
    const batches: (readonly JsMsg[])[] = [];
    // One message a batch: the second waits while the first fails.
    const { loop, consumers, events } = await loopWith(
      (messages) => {
        batches.push(messages);
        return Promise.resolve(outcome(messages.length, new Error("connection refused")));
      },
      {
        pingStore: () => {
          pings++;
          return Promise.resolve();
        },
      },
    );
    await settle();
    const first = consumers[0]?.pulls;
    const [a, b] = [fakeMessage(), fakeMessage(100, 2)];
    first?.[0]?.deliver(a.msg);
    first?.[0]?.deliver(b.msg);
    await settle();
    expect(events).toEqual(["paused", "resumed"]);
    expect(pings).toBe(1);
    expect(b.calls).toEqual([`nak ${retryDelayMs(2)}`]);
    expect(first?.slice(0, PULLS_AT_ONCE).every((pull) => pull.stopped)).toBe(true);
    expect(consumers[0]?.pulls.length).toBeGreaterThan(PULLS_AT_ONCE);
    expect(batches).toEqual([[a.msg]]);
    await loop.stop();
  });

  it("recreates a consumer the server lost, and pulls from the new one", async () => {
    let recreated = 0;
    const { loop, consumers, events } = await loopWith(() => Promise.resolve(outcome(1)), {
      recreateConsumer: () => {
        recreated++;
        return Promise.resolve();
      },
    });
    await settle();
    const lost = consumers[0];
    if (!lost) throw new Error("no consumer");
    lost.info = () => Promise.reject(apiError(10014));
    lost.pulls[0]?.fail(new Error("consumer deleted"));
    await settle();
    expect(recreated).toBe(1);
    expect(events).toEqual(["consumer_lost", "consumer_recreated"]);
    expect(consumers[1]?.pulls.length).toBeGreaterThan(0);
    await loop.stop();
  });

  it("reports progress on the messages it holds until it has stopped", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    let commit = () => {};
    const { loop, consumers } = await loopWith(
      (messages) =>
        new Promise((resolve) => {
          commit = () => {
            resolve(outcome(messages.length));
          };
        }),
      { ackWaitMs: 3000 },
    );
    await settle();
    const [stored, waiting] = [fakeMessage(), fakeMessage()];
    consumers[0]?.pulls[0]?.deliver(stored.msg);
    consumers[0]?.pulls[0]?.deliver(waiting.msg);
    await settle();
    vi.advanceTimersByTime(3000);
    expect(stored.calls).toEqual(["working", "working", "working"]);
    expect(waiting.calls).toEqual(["working", "working", "working"]);

    const stopped = loop.stop();
    commit();
    await stopped;
    vi.advanceTimersByTime(3000);
    expect(waiting.calls).toEqual(["working", "working", "working", "nak"]);
  });
});
