import { describe, expect, it } from "vitest";
import { ApiError } from "../../edge/http/errors.ts";
import { receiptOf } from "../../edge/publish/publisher.ts";

describe("what a PubAck proves", () => {
  it("a sequence: the message is in the stream, whether stored now or before", () => {
    expect(receiptOf({ stream: "METRICS", seq: 7, duplicate: false })).toEqual({
      stream: "METRICS",
      seq: 7,
      duplicate: false,
    });
    expect(receiptOf({ stream: "METRICS", seq: 7, duplicate: true }).duplicate).toBe(true);
  });

  it("a duplicate with sequence 0 proves nothing is stored: an unknown outcome, to retry", () => {
    // nats-server 2.10's answer to a message id its leader proposed but has not stored.
    const unproven = () => receiptOf({ stream: "METRICS", seq: 0, duplicate: true });
    expect(unproven).toThrow(ApiError);
    expect(unproven).toThrow(expect.objectContaining({ code: "publish_timeout", status: 503 }));
  });
});
