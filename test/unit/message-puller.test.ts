import { setImmediate } from "node:timers/promises";
import { ConsumerDebugEvents, ConsumerEvents } from "nats";
import { describe, expect, it, vi } from "vitest";
import { retryDelayMs } from "../../worker/batch-processor.ts";
import type { ConsumerRecovery } from "../../worker/consumer-recovery.ts";
import { BATCH_BYTES, createHeldMessages } from "../../worker/held-messages.ts";
import {
  createMessagePuller,
  PULL_BYTES_MARGIN,
  PULL_EXPIRES_MS,
  PULLS_AT_ONCE,
} from "../../worker/message-puller.ts";
import { createWakeSignal } from "../../worker/wake-signal.ts";
import { fakeConsumer, fakeMessage } from "../helpers/fake-jetstream.ts";
import { silentLogger } from "../helpers/logger.ts";

/** A recovery that records what it is told; `running` is whatever the test sets. */
function fakeRecovery() {
  const recovery = {
    running: undefined as Promise<void> | undefined,
    recover: vi.fn((_err: unknown) => Promise.resolve()),
    succeeded: vi.fn(),
  };
  return recovery satisfies ConsumerRecovery;
}

interface Setup {
  readonly batchSize?: number;
  readonly maxPayload?: number;
  /** A recovery already running when the puller starts. */
  readonly recovering?: Promise<void>;
}

function pullerWith(options: Setup = {}) {
  const fake = fakeConsumer();
  const held = createHeldMessages(options.batchSize ?? 10);
  const recovery = fakeRecovery();
  recovery.running = options.recovering;
  const changed = createWakeSignal();
  const stopping = new AbortController();
  const events: string[] = [];
  const state = { storeUp: true };
  const puller = createMessagePuller({
    consumer: () => fake.consumer,
    held,
    maxPayload: () => options.maxPayload ?? 1024 * 1024,
    storeUp: () => state.storeUp,
    recovery,
    changed,
    stopping: stopping.signal,
    onEvent: (event) => events.push(event),
    logger: silentLogger,
  });
  const running = puller.run();
  return {
    fake,
    held,
    recovery,
    changed,
    events,
    state,
    puller,
    /** Stops the loop as the consume loop does, and waits for the puller to end. */
    stop: async () => {
      stopping.abort();
      puller.stopPulls();
      changed.notify();
      await running;
    },
  };
}

/** Lets the puller run until it waits again. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await setImmediate();
}

describe("the puller", () => {
  it("keeps a few pulls open, each bounded by bytes and with room for the largest message", async () => {
    const { fake, stop } = pullerWith({ maxPayload: 8 * 1024 * 1024 });
    await settle();
    expect(fake.pulls).toHaveLength(PULLS_AT_ONCE);
    expect(fake.pulls[0]?.options).toEqual({
      max_bytes: 8 * 1024 * 1024 + PULL_BYTES_MARGIN,
      expires: PULL_EXPIRES_MS,
    });
    // A pull ended: another takes its place.
    fake.pulls[0]?.end();
    await settle();
    expect(fake.pulls).toHaveLength(PULLS_AT_ONCE + 1);
    await stop();
    // The pulls still open when the loop stopped were ended.
    expect(fake.pulls.map((pull) => pull.stopped)).toEqual([false, true, true, true, true]);
  });

  it("pulls at least BATCH_BYTES when the server's messages are small", async () => {
    const { fake, stop } = pullerWith({ maxPayload: 1024 });
    await settle();
    expect(fake.pulls[0]?.options).toEqual({ max_bytes: BATCH_BYTES, expires: PULL_EXPIRES_MS });
    await stop();
  });

  it("holds what arrives, and pulls no more while a whole batch is held", async () => {
    const { fake, held, changed, stop } = pullerWith({ batchSize: 2 });
    await settle();
    const [a, b] = [fakeMessage(), fakeMessage()];
    fake.pulls[0]?.deliver(a.msg);
    fake.pulls[0]?.deliver(b.msg);
    fake.pulls[0]?.end();
    await settle();
    expect([...held]).toEqual([a.msg, b.msg]);
    expect(fake.pulls).toHaveLength(PULLS_AT_ONCE);

    // The scheduler took the batch: pulling resumes.
    held.takeBatch();
    changed.notify();
    await settle();
    expect(fake.pulls).toHaveLength(PULLS_AT_ONCE + 1);
    await stop();
  });

  it("while the database is down, pulls nothing and hands back what still arrives, for later", async () => {
    const { fake, held, state, changed, stop } = pullerWith();
    await settle();
    state.storeUp = false;
    const late = fakeMessage(100, 3);
    fake.pulls[0]?.deliver(late.msg);
    fake.pulls[0]?.end();
    await settle();
    expect(late.calls).toEqual([`nak ${retryDelayMs(3)}`]);
    expect(held.count).toBe(0);
    expect(fake.pulls).toHaveLength(PULLS_AT_ONCE);

    state.storeUp = true;
    changed.notify();
    await settle();
    expect(fake.pulls).toHaveLength(PULLS_AT_ONCE + 1);
    await stop();
  });

  it("after a stop, hands back at once what still arrives", async () => {
    const { fake, held, stop } = pullerWith();
    await settle();
    const pull = fake.pulls[0];
    const stopped = stop();
    const late = fakeMessage();
    pull?.deliver(late.msg);
    await stopped;
    await settle();
    expect(late.calls).toEqual(["nak"]);
    expect(held.count).toBe(0);
  });

  it("hands a pull that cannot start, or that fails, to the recovery", async () => {
    const { fake, recovery, stop } = pullerWith();
    fake.failNextFetch(new Error("no responders"));
    await settle();
    expect(recovery.recover).toHaveBeenCalledWith(new Error("no responders"));
    fake.pulls[0]?.fail(new Error("consumer deleted"));
    await settle();
    expect(recovery.recover).toHaveBeenCalledWith(new Error("consumer deleted"));
    expect(recovery.succeeded).not.toHaveBeenCalled();
    fake.pulls[1]?.end();
    await settle();
    expect(recovery.succeeded).toHaveBeenCalledOnce();
    await stop();
  });

  it("starts no pull while a recovery runs", async () => {
    let recovered = () => {};
    const recovering = new Promise<void>((resolve) => (recovered = resolve));
    const { fake, recovery, stop } = pullerWith({ recovering });
    await settle();
    expect(fake.pulls).toHaveLength(0);
    recovery.running = undefined;
    recovered();
    await settle();
    expect(fake.pulls).toHaveLength(PULLS_AT_ONCE);
    await stop();
  });

  it("reports the consumer's status events, not its debug ones", async () => {
    const { fake, events, stop } = pullerWith();
    await settle();
    fake.pulls[0]?.status({ type: ConsumerDebugEvents.Discard, data: {} });
    fake.pulls[0]?.status({ type: ConsumerEvents.HeartbeatsMissed, data: 2 });
    await settle();
    expect(events).toEqual([ConsumerEvents.HeartbeatsMissed]);
    await stop();
  });
});
