import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createLogger } from "../../shared/logger.ts";
import { createRefusalLog } from "../../edge/http/refusal-log.ts";

interface Line {
  level: number;
  msg: string;
  client: string;
  attempts: number;
  codes: Record<string, number>;
  total: number;
}

function capture() {
  const lines: Line[] = [];
  const logger = createLogger("test", "info", {
    write: (line: string) => void lines.push(JSON.parse(line) as Line),
  });
  return { lines, logger };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_800_000_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("the log of refused requests", () => {
  it("writes the first refusal at once, then at most one line a second per client, counting", () => {
    const { lines, logger } = capture();
    const log = createRefusalLog(logger);
    log.record("192.0.2.1", "unauthorized");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ client: "192.0.2.1", attempts: 1, total: 1, level: 40 });

    // 3,300 wrong keys in the next second: no line until the second is over.
    for (let i = 0; i < 3300; i++) {
      vi.advanceTimersByTime(0.25);
      log.record("192.0.2.1", "unauthorized");
    }
    expect(lines).toHaveLength(1);
    vi.advanceTimersByTime(1000);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({
      client: "192.0.2.1",
      attempts: 3300,
      codes: { unauthorized: 3300 },
      total: 3301,
    });
    expect(log.total()).toBe(3301);
  });

  it("counts each code, and each client apart", () => {
    const { lines, logger } = capture();
    const log = createRefusalLog(logger);
    log.record("192.0.2.1", "unauthorized");
    log.record("192.0.2.2", "host_not_allowed");
    log.record("192.0.2.1", "insufficient_scope");
    log.record("192.0.2.1", "origin_not_allowed");
    log.record(undefined, "unauthorized");
    expect(lines.map((l) => l.client)).toEqual(["192.0.2.1", "192.0.2.2", "unknown"]);
    vi.advanceTimersByTime(1000);
    expect(lines).toHaveLength(4);
    expect(lines[3]).toMatchObject({
      client: "192.0.2.1",
      attempts: 2,
      codes: { insufficient_scope: 1, origin_not_allowed: 1 },
    });
  });

  it("writes nothing more once a client stops, and forgets it", () => {
    const { lines, logger } = capture();
    const log = createRefusalLog(logger);
    log.record("192.0.2.1", "unauthorized");
    vi.advanceTimersByTime(10_000);
    expect(lines).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
    log.record("192.0.2.1", "unauthorized");
    expect(lines).toHaveLength(2);
  });

  it("bounds the lines of a flood from many addresses: the clients past the limit share one line", () => {
    const { lines, logger } = capture();
    const log = createRefusalLog(logger, { maxClients: 4 });
    for (let second = 0; second < 5; second++) {
      for (let i = 0; i < 1000; i++) log.record(`2001:db8::${i.toString(16)}`, "unauthorized");
      vi.advanceTimersByTime(1000);
    }
    // Per second: the 4 followed clients and "other", each at most once.
    expect(lines.length).toBeLessThanOrEqual(5 * 5);
    expect(new Set(lines.map((l) => l.client)).size).toBe(5);
    expect(lines.some((l) => l.client === "other" && l.attempts >= 996)).toBe(true);
    expect(log.total()).toBe(5000);
  });
});
