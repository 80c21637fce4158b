import { describe, expect, it } from "vitest";
import { BoundedMemo } from "../../shared/bounded-memo.ts";

describe("BoundedMemo", () => {
  it("makes a value once per key while it is held", () => {
    const memo = new BoundedMemo<number>(10);
    let made = 0;
    const make = () => ++made;
    expect(memo.get("a", make)).toBe(1);
    expect(memo.get("b", make)).toBe(2);
    expect(memo.get("a", make)).toBe(1);
    expect(made).toBe(2);
  });

  it("drops everything when it holds `limit` keys, and makes them again", () => {
    const memo = new BoundedMemo<string>(3);
    for (const key of ["a", "b", "c"]) memo.get(key, () => key);
    expect(memo.size).toBe(3);
    memo.get("d", () => "d");
    expect(memo.size).toBe(1);
    let made = 0;
    memo.get("a", () => String(++made));
    expect(made).toBe(1);
  });

  it("drops everything when its keys' characters would pass the bound", () => {
    const memo = new BoundedMemo<number>(1000, 10);
    memo.get("abcd", () => 1);
    memo.get("efgh", () => 2);
    expect(memo.size).toBe(2);
    memo.get("ijk", () => 3);
    expect(memo.size).toBe(1);
    // A key longer than the bound alone is held alone, until the next.
    memo.get("x".repeat(20), () => 4);
    expect(memo.size).toBe(1);
    memo.get("y", () => 5);
    expect(memo.size).toBe(1);
  });

  it("holds keys of 512 characters a key on average by default", () => {
    const memo = new BoundedMemo<number>(100);
    const key = (i: number, chars: number) => `${i}:`.padEnd(chars, "k");
    // Short keys: the count bounds it.
    for (let i = 0; i < 100; i++) memo.get(key(i, 500), () => i);
    expect(memo.size).toBe(100);
    // Long keys: their characters do, at 51,200 in all.
    const long = new BoundedMemo<number>(100);
    for (let i = 0; i < 10; i++) long.get(key(i, 10_000), () => i);
    expect(long.size).toBe(5);
  });
});
