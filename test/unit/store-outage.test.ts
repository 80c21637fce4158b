import { describe, expect, it } from "vitest";
import { createStoreOutage } from "../../worker/store-outage.ts";
import { silentLogger } from "../helpers/logger.ts";

function outageWith(pingStore: () => Promise<void>) {
  const seen: string[] = [];
  const stopping = new AbortController();
  const outage = createStoreOutage({
    pingStore,
    onDown: () => seen.push("down"),
    onUp: () => seen.push("up"),
    stopping: stopping.signal,
    onEvent: (event) => seen.push(`event ${event}`),
    logger: silentLogger,
  });
  return { outage, seen, stopping };
}

describe("a store outage", () => {
  it("begins once, however many batches fail, and stops the taking of messages", () => {
    const { outage, seen } = outageWith(() => Promise.resolve());
    expect(outage.down).toBe(false);
    outage.begin();
    outage.begin();
    expect(outage.down).toBe(true);
    expect(seen).toEqual(["event paused", "down"]);
  });

  it("ends when the database answers a ping, pinging again after a failure", async () => {
    let pings = 0;
    const { outage, seen } = outageWith(() =>
      ++pings === 1 ? Promise.reject(new Error("refused")) : Promise.resolve(),
    );
    outage.begin();
    await outage.waitUntilAnswers();
    expect(pings).toBe(2);
    expect(outage.down).toBe(false);
    expect(seen).toEqual(["event paused", "down", "event resumed", "up"]);
  });

  it("stays down when the loop stops before the database answers", async () => {
    const { outage, seen, stopping } = outageWith(() => Promise.reject(new Error("refused")));
    outage.begin();
    const waiting = outage.waitUntilAnswers();
    stopping.abort();
    await waiting;
    expect(outage.down).toBe(true);
    expect(seen).toEqual(["event paused", "down"]);
  });
});
