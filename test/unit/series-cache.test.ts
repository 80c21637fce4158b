import { describe, expect, it } from "vitest";
import { SeriesCache } from "../../worker/series-cache.ts";

describe("SeriesCache", () => {
  it("holds at most its capacity, forgetting the series used least recently", () => {
    const cache = new SeriesCache(2);
    cache.set("a", { id: 1, attributes: null });
    cache.set("b", { id: 2, attributes: null });
    expect(cache.get("a")?.id).toBe(1);
    cache.set("c", { id: 3, attributes: null });
    expect(cache.size).toBe(2);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")?.id).toBe(1);
    expect(cache.get("c")?.id).toBe(3);
  });

  it("replaces a series set again", () => {
    const cache = new SeriesCache(2);
    cache.set("a", { id: 1, attributes: null });
    cache.set("a", { id: 1, attributes: '{"unit":"ms"}' });
    expect(cache.size).toBe(1);
    expect(cache.get("a")).toEqual({ id: 1, attributes: '{"unit":"ms"}' });
  });
});
