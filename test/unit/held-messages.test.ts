import { describe, expect, it } from "vitest";
import { BATCH_BYTES, createHeldMessages } from "../../worker/held-messages.ts";
import { fakeMessage } from "../helpers/fake-jetstream.ts";

describe("the held messages", () => {
  it("hold a whole batch once batchSize messages wait", () => {
    const held = createHeldMessages(3);
    held.add(fakeMessage().msg);
    held.add(fakeMessage().msg);
    expect(held.hasFullBatch()).toBe(false);
    held.add(fakeMessage().msg);
    expect(held.hasFullBatch()).toBe(true);
    expect(held.count).toBe(3);
  });

  it("hold a whole batch once BATCH_BYTES wait, however few the messages", () => {
    const held = createHeldMessages(500);
    held.add(fakeMessage(BATCH_BYTES / 2).msg);
    expect(held.hasFullBatch()).toBe(false);
    held.add(fakeMessage(BATCH_BYTES / 2).msg);
    expect(held.hasFullBatch()).toBe(true);
  });

  it("give batches from the head, in arrival order, and forget their bytes", () => {
    const held = createHeldMessages(2);
    const messages = [fakeMessage(), fakeMessage(), fakeMessage()];
    for (const m of messages) held.add(m.msg);
    expect(held.takeBatch()).toEqual([messages[0]?.msg, messages[1]?.msg]);
    expect(held.takeBatch()).toEqual([messages[2]?.msg]);
    held.add(fakeMessage(BATCH_BYTES).msg);
    expect(held.hasFullBatch()).toBe(true);
    expect(held.takeBatch()).toHaveLength(1);
    held.add(fakeMessage(10).msg);
    // The large message's bytes left with it: one small message is not a whole batch.
    expect(held.hasFullBatch()).toBe(false);
  });

  it("give a batch bounded by bytes, and at least one message", () => {
    const held = createHeldMessages(500);
    for (let i = 0; i < 5; i++) held.add(fakeMessage(BATCH_BYTES / 3).msg);
    expect(held.takeBatch()).toHaveLength(3);
    expect(held.takeBatch()).toHaveLength(2);
    expect(held.takeBatch()).toEqual([]);
    held.add(fakeMessage(BATCH_BYTES * 2).msg);
    expect(held.takeBatch()).toHaveLength(1);
  });

  it("give all of them up at once, to be handed back, and are empty after", () => {
    const held = createHeldMessages(2);
    const messages = [fakeMessage(BATCH_BYTES), fakeMessage()];
    for (const m of messages) held.add(m.msg);
    expect([...held]).toEqual(messages.map((m) => m.msg));
    expect(held.takeAll()).toEqual(messages.map((m) => m.msg));
    expect(held.count).toBe(0);
    expect([...held]).toEqual([]);
    held.add(fakeMessage().msg);
    expect(held.hasFullBatch()).toBe(false);
  });
});
