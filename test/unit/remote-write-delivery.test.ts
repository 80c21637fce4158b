import { describe, expect, it } from "vitest";
import type { ReceiverAnswer } from "../../worker/receiver-client.ts";
import { retryAfterMs } from "../../worker/receiver-client.ts";
import {
  deliver,
  ReceiverUnavailable,
  refusalKindOf,
  type RetryPolicy,
} from "../../worker/remote-write-delivery.ts";

const BODY = new Uint8Array([1, 2, 3]);

/** A receiver answering each attempt in turn (an Error: no answer at all). */
function receiver(answers: (Partial<ReceiverAnswer> | Error)[]) {
  const attempts: number[] = [];
  const post = (body: Uint8Array) => {
    attempts.push(body.byteLength);
    const next = answers.shift() ?? { status: 204 };
    if (next instanceof Error) return Promise.reject(next);
    return Promise.resolve({ status: 204, text: "", retryAfterMs: undefined, ...next });
  };
  return { post, attempts };
}

function policy(waits: number[], retries: string[] = []): RetryPolicy {
  return {
    attempts: 4,
    maxDelayMs: 30_000,
    onRetry: (reason) => retries.push(reason),
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
  };
}

describe("deliver", () => {
  it("is done at the first 2xx", async () => {
    const { post, attempts } = receiver([{ status: 200 }]);
    const waits: number[] = [];
    expect(await deliver(post, BODY, policy(waits))).toEqual({ ok: true });
    expect([attempts.length, waits]).toEqual([1, []]);
  });

  it("retries 5xx, 429 and no answer with growing waits, Retry-After honoured", async () => {
    const { post, attempts } = receiver([
      { status: 503, text: "restarting" },
      new Error("connect ECONNREFUSED"),
      { status: 429, retryAfterMs: 7000 },
      { status: 204 },
    ]);
    const waits: number[] = [];
    const retries: string[] = [];
    expect(await deliver(post, BODY, policy(waits, retries))).toEqual({ ok: true });
    expect(attempts).toHaveLength(4);
    expect(waits).toEqual([500, 1000, 7000]);
    expect(retries[0]).toBe("the receiver answered 503 restarting");
    expect(retries[1]).toContain("ECONNREFUSED");
  });

  it("waits no longer than its longest wait, whatever Retry-After asks", async () => {
    const { post } = receiver([{ status: 503, retryAfterMs: 3_600_000 }]);
    const waits: number[] = [];
    await deliver(post, BODY, policy(waits));
    expect(waits).toEqual([30_000]);
  });

  it("gives up with ReceiverUnavailable when every attempt failed", async () => {
    const { post, attempts } = receiver(Array.from({ length: 4 }, () => ({ status: 500 })));
    await expect(deliver(post, BODY, policy([]))).rejects.toBeInstanceOf(ReceiverUnavailable);
    expect(attempts).toHaveLength(4);
  });

  it("does not retry a 4xx other than 429: the request can never be stored", async () => {
    const { post, attempts } = receiver([{ status: 400, text: "out of order sample\n" }]);
    expect(await deliver(post, BODY, policy([]))).toEqual({
      ok: false,
      kind: "out_of_order",
      answer: "400 out of order sample",
    });
    expect(attempts).toHaveLength(1);
  });
});

describe("refusalKindOf", () => {
  it.each([
    ["out of order sample", "out_of_order"],
    ['series {__name__="a"}: out of bounds', "out_of_order"],
    ["duplicate sample for timestamp", "duplicate"],
    ["Duplicate sample for timestamp", "duplicate"],
    ["the sample has been rejected (err-mimir-sample-out-of-order)", "out_of_order"],
    ["… (err-mimir-sample-duplicate-timestamp)", "duplicate"],
    ["cannot parse WriteRequest", "refused"],
  ] as const)("classifies %j as %s", (text, kind) => {
    expect(refusalKindOf(text)).toBe(kind);
  });
});

describe("retryAfterMs", () => {
  it("reads seconds and HTTP dates", () => {
    const now = Date.parse("2026-12-03T10:00:00Z");
    expect(retryAfterMs("5", now)).toBe(5000);
    expect(retryAfterMs("Thu, 03 Dec 2026 10:00:30 GMT", now)).toBe(30_000);
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });
});
