import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  readWriteRequest,
  type RemoteWriteBatch,
} from "../../edge/remote-write/write-request-reader.ts";
import { runToEnd } from "../../shared/cooperative.ts";
import { damaged } from "../helpers/damaged-bytes.ts";
import { WriteRequestSchema } from "../../shared/gen/proto/prometheus/remote_pb.js";

/** What the edge reads of a request, timestamps as numbers, to compare the two readers. */
const seen = (request: RemoteWriteBatch) => ({
  timeseries: request.timeseries.map((s) => ({
    labels: s.labels.map((l) => ({ name: l.name, value: l.value })),
    samples: s.samples.map((p) => ({ value: p.value, timestamp: Number(p.timestamp) })),
    exemplars: s.exemplars.length,
    histograms: s.histograms.length,
  })),
  metadata: request.metadata.length,
});

const IN_RANGE = 2 ** 48;

const label = fc.record({
  name: fc.string({ maxLength: 12 }),
  value: fc.string({ unit: "binary", maxLength: 20 }),
});
const sample = fc.record({
  value: fc.oneof(fc.double(), fc.constantFrom(0, -0, NaN, Infinity)),
  timestamp: fc.oneof(
    fc.bigInt({ min: 0n, max: BigInt(IN_RANGE) - 1n }),
    fc.constantFrom(0n, 127n, 128n, 1_777_593_600_000n),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  ),
});
const series = fc.record({
  labels: fc.array(label, { maxLength: 5 }),
  samples: fc.array(sample, { maxLength: 8 }),
  exemplars: fc.array(fc.record({ value: fc.double() }), { maxLength: 1 }),
});
const request = fc.record({
  timeseries: fc.array(series, { maxLength: 6 }),
  metadata: fc.array(fc.record({ metricFamilyName: fc.string() }), { maxLength: 1 }),
});

function bytesOf(value: object): Uint8Array {
  return toBinary(WriteRequestSchema, create(WriteRequestSchema, value));
}

describe("the WriteRequest read by hand", () => {
  it("reads what protobuf-es reads, and gives up on exactly what it does not read itself", () => {
    fc.assert(
      fc.property(request, (value) => {
        const bytes = bytesOf(value);
        const fast = runToEnd(readWriteRequest(bytes));
        const slow = fromBinary(WriteRequestSchema, bytes);
        const plain =
          value.metadata.length === 0 &&
          value.timeseries.every(
            (s) =>
              s.exemplars.length === 0 &&
              s.samples.every((p) => p.timestamp >= 0n && p.timestamp < BigInt(IN_RANGE)),
          );
        if (!plain) {
          expect(fast).toBeUndefined();
          return;
        }
        expect(fast).toBeDefined();
        expect(seen(fast as RemoteWriteBatch)).toStrictEqual(seen(slow));
      }),
      { numRuns: 500 },
    );
  });

  it("never reads bytes protobuf-es refuses, nor reads them otherwise (cut, flipped)", () => {
    const plainRequest = request.map((r) => ({
      metadata: [],
      timeseries: r.timeseries.map((s) => ({
        labels: s.labels,
        exemplars: [],
        samples: s.samples.map((p) => ({
          ...p,
          timestamp: BigInt.asUintN(48, p.timestamp),
        })),
      })),
    }));
    fc.assert(
      fc.property(damaged(plainRequest.map(bytesOf)), (bytes) => {
        const fast = runToEnd(readWriteRequest(bytes));
        // Whatever the hand reader takes, protobuf-es takes too, as the same request.
        if (fast !== undefined) {
          expect(seen(fast)).toStrictEqual(seen(fromBinary(WriteRequestSchema, bytes)));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("gives up on a label that is not UTF-8, which protobuf-es then decides", () => {
    // timeseries { labels { name: "a" value: 0xff } }
    const bytes = Uint8Array.from([0x0a, 0x07, 0x0a, 0x05, 0x0a, 0x01, 0x61, 0x12, 0x00]);
    expect(runToEnd(readWriteRequest(bytes))).toStrictEqual({
      timeseries: [
        { labels: [{ name: "a", value: "" }], samples: [], exemplars: [], histograms: [] },
      ],
      metadata: [],
    });
    const invalid = Uint8Array.from([0x0a, 0x08, 0x0a, 0x06, 0x0a, 0x01, 0x61, 0x12, 0x01, 0xff]);
    expect(runToEnd(readWriteRequest(invalid))).toBeUndefined();
  });
});
