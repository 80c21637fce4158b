import { setImmediate } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createWakeSignal } from "../../worker/wake-signal.ts";

describe("the wake signal", () => {
  it("wakes every part waiting", async () => {
    const signal = createWakeSignal();
    const woken: string[] = [];
    const puller = signal.wait().then(() => woken.push("puller"));
    const scheduler = signal.wait().then(() => woken.push("scheduler"));
    signal.notify();
    await Promise.all([puller, scheduler]);
    expect(woken.sort()).toEqual(["puller", "scheduler"]);
  });

  it("does not remember a notify nobody waited for", async () => {
    const signal = createWakeSignal();
    signal.notify();
    let woken = false;
    void signal.wait().then(() => (woken = true));
    await setImmediate();
    expect(woken).toBe(false);
    signal.notify();
    await setImmediate();
    expect(woken).toBe(true);
  });
});
