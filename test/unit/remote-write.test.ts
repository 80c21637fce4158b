import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import fc from "fast-check";
import { compress } from "snappyjs";
import { describe, expect, it } from "vitest";
import { ApiError, type ErrorDetail } from "../../edge/http/errors.ts";
import {
  WriteRequestSchema,
  type WriteRequest,
} from "../../shared/gen/proto/prometheus/remote_pb.js";
import { METRIC_BOUNDS, REQUEST_LIMITS } from "../../shared/limits.ts";
import { runToEnd } from "../../shared/cooperative.ts";
import { ExpansionBudget } from "../../edge/publish/expansion-budget.ts";
import {
  decodeWriteRequest,
  pointsOfWriteRequest as convert,
  pointCountOf,
} from "../../edge/remote-write/remote-write.ts";
import { seriesRowKey } from "../../shared/series-identity.ts";
import { decodeSnappyBlock } from "../../edge/remote-write/snappy-block.ts";
import { refusal } from "../helpers/refusal.ts";

/**
 * Remote write bodies are made as Prometheus makes them: a WriteRequest built with the generated
 * schema, serialised with toBinary and compressed with snappyjs into one Snappy block.
 */
type WriteRequestInit = MessageInitShape<typeof WriteRequestSchema>;

/** The request's metrics, made at once, within the expansion bound of the largest body. */
function metricsOfWriteRequest(request: WriteRequest) {
  const { columns, skipped } = runToEnd(
    convert(request, new ExpansionBudget(REQUEST_LIMITS.bodyBytes)),
  );
  return { metrics: columns.metrics(), skipped };
}

const MiB = 1024 * 1024;
const T = 1_714_566_896_789n;

function encode(init: WriteRequestInit): Uint8Array {
  return compress(toBinary(WriteRequestSchema, create(WriteRequestSchema, init)));
}

function request(init: WriteRequestInit): WriteRequest {
  return create(WriteRequestSchema, init);
}

function labels(record: Record<string, string>) {
  return Object.entries(record).map(([name, value]) => ({ name, value }));
}

/** One series of samples, its labels given as a record. */
function series(record: Record<string, string>, samples: [number, bigint][]) {
  return {
    labels: labels(record),
    samples: samples.map(([value, timestamp]) => ({ value, timestamp })),
  };
}

/** A NaN with the given bits, as Prometheus writes its staleness marker. */
function nanWithBits(bits: bigint): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, bits);
  return view.getFloat64(0);
}
const STALE_MARKER = nanWithBits(0x7ff0_0000_0000_0002n);
/** The staleness marker as it is once the CPU has quietened it. */
const QUIET_STALE_MARKER = nanWithBits(0x7ff8_0000_0000_0002n);

function details(call: () => unknown): ErrorDetail[] {
  const err = refusal(call);
  expect(err.code).toBe("invalid_metrics");
  return [...(err.details ?? [])];
}

/** A Snappy block by hand: the length header, then raw element bytes. */
function block(declared: number[], ...elements: number[]): Uint8Array {
  return new Uint8Array([...declared, ...elements]);
}

describe("a Snappy block", () => {
  it("decompresses to exactly the bytes that were compressed", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 5000 }),
          fc.string({ maxLength: 3000 }).map((s) => new Uint8Array(Buffer.from(s.repeat(3)))),
        ),
        (data) => {
          expect(decodeSnappyBlock(compress(data), MiB)).toEqual(data);
        },
      ),
    );
  });

  it("takes a block of exactly the limit and refuses one byte more with 413, by its header", () => {
    expect(decodeSnappyBlock(compress(new Uint8Array(MiB)), MiB).byteLength).toBe(MiB);
    const over = refusal(() => decodeSnappyBlock(compress(new Uint8Array(MiB + 1)), MiB));
    expect([over.code, over.status]).toEqual(["body_too_large", 413]);
    expect(over.message).toContain(`declares ${MiB + 1} bytes`);
  });

  it("refuses a bomb (a tiny block declaring 4 GiB) with 413 before decompressing anything", () => {
    // Were it decompressed, snappyjs would allocate the declared 4 GiB first.
    const bomb = block([0xff, 0xff, 0xff, 0xff, 0x0f], 0x00, 0x41);
    const err = refusal(() => decodeSnappyBlock(bomb, MiB));
    expect([err.code, err.status]).toEqual(["body_too_large", 413]);
  });

  it("refuses every truncation of a valid block with 400, instead of padding it with zeros", () => {
    const data = new Uint8Array(Buffer.from("remote write ".repeat(40) + "end"));
    const whole = compress(data);
    for (let cut = 0; cut < whole.length; cut++) {
      const err = refusal(() => decodeSnappyBlock(whole.subarray(0, cut), MiB));
      expect([err.code, err.status]).toEqual(["malformed_body", 400]);
    }
  });

  it("refuses a literal whose length is negative as a 32-bit integer (snappyjs loops forever on it)", () => {
    const err = refusal(() => decodeSnappyBlock(block([10], 0xfc, 0xfa, 0xff, 0xff, 0xff), MiB));
    expect(err.code).toBe("malformed_body");
  });

  it("refuses copies from before the start, copies with offset 0, and blocks longer than declared", () => {
    const cases = [
      block([8], 0x01, 0x01), // a 4-byte copy 1 byte back, with nothing written yet
      block([5], 0x00, 0x41, 0x01, 0x00), // a copy with offset 0
      block([4], 0x00, 0x41, 0x0e, 0xff, 0xff, 0xff, 0x7f), // a copy from 2 GiB back
      block([1], 0x04, 0x41, 0x42), // a 2-byte literal in a 1-byte block
      block([2], 0x00, 0x41), // one byte short
      block([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), // a header longer than 5 bytes
      block([]),
    ];
    for (const bytes of cases) {
      expect(refusal(() => decodeSnappyBlock(bytes, MiB)).code).toBe("malformed_body");
    }
  });

  it("decodes or refuses any bytes with 400/413, never throwing anything else or hanging", () => {
    const valid = compress(new Uint8Array(Buffer.from("abcabcabcabc".repeat(20))));
    const mutated = fc
      .tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }))
      .map(([at, byte]) => {
        const copy = new Uint8Array(valid);
        copy[at] = byte;
        return copy;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated), (bytes) => {
        try {
          const out = decodeSnappyBlock(bytes, 64 * 1024);
          expect(out.byteLength).toBeLessThanOrEqual(64 * 1024);
        } catch (err) {
          expect(err).toBeInstanceOf(ApiError);
          expect([400, 413]).toContain((err as ApiError).status);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("decoding a WriteRequest", () => {
  it("reads what toBinary wrote", () => {
    const init = { timeseries: [series({ __name__: "up", job: "node" }, [[1, T]])] };
    expect(decodeWriteRequest(encode(init), MiB)).toEqual(request(init));
  });

  it("ignores fields it does not know (a later version's additions)", () => {
    const known = toBinary(
      WriteRequestSchema,
      request({ timeseries: [series({ __name__: "up" }, [[1, T]])] }),
    );
    // Field 9, length-delimited, 2 bytes.
    const withUnknown = new Uint8Array([...known, 0x4a, 0x02, 0x68, 0x69]);
    const decoded = decodeWriteRequest(compress(withUnknown), MiB);
    expect(decoded.timeseries[0]?.labels).toEqual(
      labels({ __name__: "up" }).map((l) => expect.objectContaining(l) as unknown),
    );
  });

  it("refuses bytes that are not a WriteRequest with 400", () => {
    const garbage = [
      new Uint8Array([0x0a, 0x05, 0x01]), // a field longer than the message
      new Uint8Array([0x0f]), // wire type 7 does not exist
      new Uint8Array([0x0a, 0x03, 0x0a, 0x01, 0xff]), // a label past its series' end
      new Uint8Array(Buffer.from("not protobuf at all, just some text")),
    ];
    for (const bytes of garbage) {
      const err = refusal(() => decodeWriteRequest(compress(bytes), MiB));
      expect([err.code, err.status]).toEqual(["malformed_body", 400]);
      expect(err.message).toContain("prometheus.WriteRequest");
    }
  });

  it("refuses a label that is not valid UTF-8 with 400", () => {
    const label = [0x0a, 0x01, 0x61, 0x12, 0x02, 0xc3, 0x28]; // name "a", value: invalid UTF-8
    const series = [0x0a, label.length, ...label];
    const bytes = new Uint8Array([0x0a, series.length, ...series]);
    expect(refusal(() => decodeWriteRequest(compress(bytes), MiB)).code).toBe("malformed_body");
  });

  it("decodes or refuses any decompressed bytes with 400, never anything else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        try {
          decodeWriteRequest(compress(bytes), MiB);
        } catch (err) {
          expect(err).toBeInstanceOf(ApiError);
          expect((err as ApiError).status).toBe(400);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("samples as metrics", () => {
  it("maps each sample: __name__ the name, the other labels its tags, timestamp in ms, value", () => {
    const { metrics, skipped } = metricsOfWriteRequest(
      request({
        timeseries: [
          series({ __name__: "http_requests_total", job: "api", code: "200" }, [
            [1027, T],
            [1028.5, T + 15_000n],
          ]),
          series({ __name__: "up" }, [[-0.25, 0n]]),
        ],
      }),
    );
    expect(metrics).toEqual([
      {
        name: "http_requests_total",
        value: 1027,
        timestamp: Number(T),
        tags: { job: "api", code: "200" },
      },
      {
        name: "http_requests_total",
        value: 1028.5,
        timestamp: Number(T + 15_000n),
        tags: { job: "api", code: "200" },
      },
      { name: "up", value: -0.25, timestamp: 0 },
    ]);
    expect(skipped).toEqual({
      staleMarkers: 0,
      nonFinite: 0,
      histograms: 0,
      exemplars: 0,
      metadata: 0,
    });
  });

  it("skips staleness markers and counts them; NaN and ±Inf values are skipped and counted apart", () => {
    const { metrics, skipped } = metricsOfWriteRequest(
      request({
        timeseries: [
          series({ __name__: "g" }, [
            [1, T],
            [STALE_MARKER, T + 1n],
            [QUIET_STALE_MARKER, T + 7n],
            [Number.NaN, T + 2n],
            [nanWithBits(0x7ff8_0000_0000_0001n), T + 3n],
            [Number.POSITIVE_INFINITY, T + 4n],
            [Number.NEGATIVE_INFINITY, T + 5n],
            [2, T + 6n],
          ]),
        ],
      }),
    );
    expect(metrics.map((m) => m.value)).toEqual([1, 2]);
    expect(skipped).toMatchObject({ staleMarkers: 2, nonFinite: 4 });
  });

  it("counts native histograms, exemplars and metadata, which it does not store", () => {
    const { metrics, skipped } = metricsOfWriteRequest(
      request({
        timeseries: [
          {
            labels: labels({ __name__: "latency" }),
            samples: [{ value: 3, timestamp: T }],
            exemplars: [{ labels: labels({ trace_id: "abc" }), value: 3, timestamp: T }],
            histograms: [
              { sum: 1, timestamp: T },
              { sum: 2, timestamp: T + 1n },
            ],
          },
        ],
        metadata: [{ metricFamilyName: "latency", help: "how long", unit: "seconds" }],
      }),
    );
    expect(metrics).toHaveLength(1);
    expect(skipped).toEqual({
      staleMarkers: 0,
      nonFinite: 0,
      histograms: 2,
      exemplars: 1,
      metadata: 1,
    });
  });

  it("takes labels in any order: the metric, and so its series identity, is the same", () => {
    const sorted = metricsOfWriteRequest(
      request({ timeseries: [series({ __name__: "m", a: "1", b: "2" }, [[1, T]])] }),
    ).metrics[0];
    const unsorted = metricsOfWriteRequest(
      request({ timeseries: [series({ b: "2", __name__: "m", a: "1" }, [[1, T]])] }),
    ).metrics[0];
    expect(sorted && unsorted && seriesRowKey(unsorted, 0)).toBe(sorted && seriesRowKey(sorted, 0));
  });

  it("treats a label with an empty value as no label, as Prometheus does", () => {
    const { metrics } = metricsOfWriteRequest(
      request({ timeseries: [series({ __name__: "m", instance: "", job: "j" }, [[1, T]])] }),
    );
    expect(metrics[0]?.tags).toEqual({ job: "j" });
  });

  it("keeps a label named __proto__ as a tag, changing no object's prototype", () => {
    const { metrics } = metricsOfWriteRequest(
      request({
        timeseries: [
          {
            labels: [
              { name: "__name__", value: "m" },
              { name: "__proto__", value: "x" },
              { name: "constructor", value: "y" },
            ],
            samples: [{ value: 1, timestamp: T }],
          },
        ],
      }),
    );
    const tags = metrics[0]?.tags ?? {};
    expect(Object.getPrototypeOf(tags)).toBe(Object.prototype);
    expect(Object.entries(tags)).toEqual([
      ["__proto__", "x"],
      ["constructor", "y"],
    ]);
  });

  it("refuses a series without __name__ (or with an empty one), naming it", () => {
    for (const record of [{ job: "j" }, { __name__: "", job: "j" }]) {
      const found = details(() =>
        metricsOfWriteRequest(
          request({
            timeseries: [
              series({ __name__: "ok" }, [
                [1, T],
                [2, T + 1n],
              ]),
              series(record, [[1, T]]),
            ],
          }),
        ),
      );
      expect(found).toEqual([
        {
          index: 2,
          path: "",
          message: "timeseries[1]: the series has no __name__ label, which names the metric",
        },
      ]);
    }
  });

  it("refuses repeated label names and empty label names", () => {
    const repeated = {
      labels: [...labels({ __name__: "m", a: "1" }), { name: "a", value: "2" }],
      samples: [{ value: 1, timestamp: T }],
    };
    const unnamed = {
      labels: [...labels({ __name__: "m" }), { name: "", value: "v" }],
      samples: [{ value: 1, timestamp: T }],
    };
    expect(
      details(() => metricsOfWriteRequest(request({ timeseries: [repeated] })))[0]?.message,
    ).toBe("timeseries[0]: the label 'a' appears twice");
    expect(
      details(() => metricsOfWriteRequest(request({ timeseries: [unnamed] })))[0]?.message,
    ).toBe("timeseries[0]: a label has an empty name");
  });

  it("passes a series without samples (it stores nothing), whatever its labels", () => {
    const { metrics } = metricsOfWriteRequest(
      request({ timeseries: [{ labels: labels({ job: "no name" }), histograms: [{ sum: 1 }] }] }),
    );
    expect(metrics).toEqual([]);
  });

  it("holds each sample to the JSON API's bounds, naming the sample and the label", () => {
    const long = (n: number) => "x".repeat(n);
    const manyLabels = Object.fromEntries(
      Array.from({ length: METRIC_BOUNDS.tagCount + 1 }, (_, i) => [`l${i}`, "v"]),
    );
    const cases: [Record<string, string>, bigint, string][] = [
      [
        { __name__: long(METRIC_BOUNDS.nameLength + 1) },
        T,
        "__name__ must NOT have more than 256 characters",
      ],
      [{ __name__: "m", [long(METRIC_BOUNDS.tagKeyLength + 1)]: "v" }, T, "the labels"],
      [
        { __name__: "m", k: long(METRIC_BOUNDS.tagValueLength + 1) },
        T,
        "the label 'k' must NOT have more than 256 characters",
      ],
      [{ __name__: "m", k: "a\u0000b" }, T, "the label 'k' must not contain NUL characters"],
      [{ __name__: "m", ...manyLabels }, T, "the labels must NOT have more than 64 properties"],
      [
        { __name__: "m" },
        -1n,
        "the timestamp must be an RFC 3339 date-time string or integer milliseconds",
      ],
      [{ __name__: "m" }, 253_402_300_800_000n, "the timestamp must be"],
      [{ __name__: "m" }, 9_223_372_036_854_775_807n, "the timestamp must be"],
    ];
    for (const [record, timestamp, message] of cases) {
      const found = details(() =>
        metricsOfWriteRequest(
          request({
            timeseries: [series({ __name__: "fine" }, [[1, T]]), series(record, [[1, timestamp]])],
          }),
        ),
      );
      expect(found.length).toBeGreaterThan(0);
      for (const detail of found) expect(detail.index).toBe(1);
      expect(found.map((d) => d.message).join("\n")).toContain(
        `timeseries[1].samples[0]: ${message}`,
      );
    }
  });

  it("takes the longest name, the most labels and the edges of time the bounds allow", () => {
    const most = Object.fromEntries(
      Array.from({ length: METRIC_BOUNDS.tagCount }, (_, i) => [
        `${i}`.padEnd(METRIC_BOUNDS.tagKeyLength, "k"),
        "v".repeat(METRIC_BOUNDS.tagValueLength),
      ]),
    );
    const { metrics } = metricsOfWriteRequest(
      request({
        timeseries: [
          series({ __name__: "n".repeat(METRIC_BOUNDS.nameLength), ...most }, [
            [1, 0n],
            [2, 253_402_300_799_999n],
          ]),
        ],
      }),
    );
    expect(metrics.map((m) => m.timestamp)).toEqual([0, 253_402_300_799_999]);
  });

  it("refuses all or nothing, listing at most the documented number of problems", () => {
    const bad = Array.from({ length: 150 }, () => series({ job: "no name" }, [[1, T]]));
    const err = refusal(() =>
      metricsOfWriteRequest(
        request({ timeseries: [series({ __name__: "ok" }, [[1, T]]), ...bad] }),
      ),
    );
    expect(err.details).toHaveLength(REQUEST_LIMITS.errorDetails);
    expect(err.message).toBe(
      "150 sample(s) are invalid (the first 100 problems are listed); nothing was accepted.",
    );
  });

  it("counts samples and histograms as points", () => {
    expect(
      pointCountOf(
        request({
          timeseries: [
            { samples: [{}, {}], histograms: [{}] },
            { samples: [{}], exemplars: [{}] },
          ],
          metadata: [{}],
        }),
      ),
    ).toBe(4);
  });
});
