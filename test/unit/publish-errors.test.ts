import { NatsError } from "nats";
import { describe, expect, it } from "vitest";
import { publishError } from "../../edge/publish/publisher.ts";

/** A JetStream API error as nats.js throws it from a publish. */
function jsError(errCode: number, description: string): NatsError {
  const e = new NatsError(description, "500");
  e.api_error = { code: 503, err_code: errCode, description };
  return e;
}

describe("what a refused publish answers", () => {
  it("a stream at its limit: stream_full", () => {
    expect(publishError(jsError(10077, "maximum bytes exceeded")).code).toBe("stream_full");
  });

  it("a store whose disk is full: storage_full, not stream_full", () => {
    // nats-server 2.10.27's answer when a block file cannot be written.
    const full = jsError(
      10077,
      "write /var/lib/nats/jetstream/$G/streams/METRICS/msgs/146.blk: no space left on device",
    );
    expect(publishError(full).code).toBe("storage_full");
    expect(publishError(jsError(10023, "insufficient resources")).code).toBe("storage_full");
  });
});
