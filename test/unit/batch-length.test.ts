import type { JsMsg } from "nats";
import { describe, expect, it } from "vitest";
import { BATCH_BYTES, batchLength } from "../../worker/held-messages.ts";

const msg = (bytes: number) => ({ data: new Uint8Array(bytes) }) as unknown as JsMsg;

describe("a batch's length", () => {
  it("takes up to batchSize small messages", () => {
    expect(
      batchLength(
        Array.from({ length: 10 }, () => msg(100)),
        4,
      ),
    ).toBe(4);
    expect(
      batchLength(
        Array.from({ length: 3 }, () => msg(100)),
        4,
      ),
    ).toBe(3);
  });

  it("stops before the messages' bytes pass BATCH_BYTES", () => {
    const quarters = Array.from({ length: 100 }, () => msg(BATCH_BYTES / 4));
    expect(batchLength(quarters, 500)).toBe(4);
    const thirds = Array.from({ length: 100 }, () => msg(Math.ceil(BATCH_BYTES / 3)));
    expect(batchLength(thirds, 500)).toBe(2);
  });

  it("takes one message however large, so that a batch is never empty", () => {
    expect(batchLength([msg(BATCH_BYTES * 2), msg(10)], 500)).toBe(1);
  });
});
