import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it, vi } from "vitest";
import {
  computeInTurn,
  LARGE_BODY_BYTES,
  runInSlices,
  runToEnd,
  SLICE_MS,
  type Steps,
} from "../../shared/cooperative.ts";

/** Busy work of about `ms`, in steps of a tenth of a millisecond, noting when it ran. */
function* busy(ms: number, ran: number[] = []): Steps<number> {
  const end = performance.now() + ms;
  let steps = 0;
  while (performance.now() < end) {
    const stepEnd = performance.now() + 0.1;
    while (performance.now() < stepEnd) {
      // spin
    }
    ran.push(performance.now());
    steps++;
    yield;
  }
  return steps;
}

describe("runToEnd", () => {
  it("runs the steps without pausing and returns their result", () => {
    let turns = 0;
    void nextTurn().then(() => turns++);
    expect(runToEnd(busy(5))).toBeGreaterThan(0);
    expect(turns).toBe(0);
  });
});

describe("runInSlices", () => {
  it("gives the event loop a turn at least every slice while long work runs", async () => {
    // The clock is the steps' own: 600 steps of 0.1 ms, so a busy machine changes nothing.
    let now = 1000;
    const clock = vi.spyOn(performance, "now").mockImplementation(() => now);
    function* work(): Steps<void> {
      for (let i = 0; i < 600; i++) {
        now += 0.1;
        yield;
      }
    }
    try {
      const turns = [now];
      // An object, not a variable: TypeScript would otherwise take it as always true in the loop.
      const state = { working: true };
      void (async () => {
        while (state.working) {
          await nextTurn();
          turns.push(now);
        }
      })();
      await runInSlices(work());
      state.working = false;
      const gaps = turns.slice(1).map((t, i) => t - (turns[i] ?? t));
      expect(turns.length).toBeGreaterThanOrEqual(60 / SLICE_MS - 1);
      expect(Math.max(...gaps)).toBeLessThanOrEqual(SLICE_MS + 0.1 + 1e-9);
    } finally {
      clock.mockRestore();
    }
  });

  it("never pauses work that ends within its first slice", async () => {
    // The clock is the steps' own, so a busy machine descheduling the test changes nothing.
    let now = 1000;
    const clock = vi.spyOn(performance, "now").mockImplementation(() => now);
    function* quick(): Steps<void> {
      for (let i = 0; i < 100; i++) {
        now += SLICE_MS / 200;
        yield;
      }
    }
    try {
      let turns = 0;
      void nextTurn().then(() => turns++);
      await runInSlices(quick());
      expect(turns).toBe(0);
      // The same steps over more than a slice's time are paused.
      const slow = function* (): Steps<void> {
        for (let i = 0; i < 100; i++) {
          now += SLICE_MS / 40;
          yield;
        }
      };
      await runInSlices(slow());
      expect(turns).toBe(1);
    } finally {
      clock.mockRestore();
    }
  });

  it("passes on what the steps throw", async () => {
    function* failing(): Steps<number> {
      yield;
      throw new Error("bad input");
    }
    await expect(runInSlices(failing())).rejects.toThrow("bad input");
  });
});

describe("computeInTurn", () => {
  it("runs large requests' work one at a time, in the order they came, small ones at once", async () => {
    const events: string[] = [];
    const work = (name: string, ms: number) => async () => {
      events.push(`${name} starts`);
      await runInSlices(busy(ms));
      events.push(`${name} ends`);
      return name;
    };
    const large = LARGE_BODY_BYTES;
    const first = computeInTurn(large, work("first", 20));
    const second = computeInTurn(large, work("second", 5));
    // A small request does not wait for the large ones' turns.
    await nextTurn();
    const small = computeInTurn(large - 1, work("small", 1));
    expect(await Promise.all([first, second, small])).toEqual(["first", "second", "small"]);
    expect(events.indexOf("small ends")).toBeLessThan(events.indexOf("first ends"));
    expect(events.indexOf("first ends")).toBeLessThan(events.indexOf("second starts"));
  });

  it("hands the turn on when a large request's work fails", async () => {
    const failed = computeInTurn(LARGE_BODY_BYTES, () => Promise.reject(new Error("refused")));
    const next = computeInTurn(LARGE_BODY_BYTES, () => Promise.resolve("next"));
    await expect(failed).rejects.toThrow("refused");
    expect(await next).toBe("next");
  });
});
