import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runToEnd } from "../../shared/cooperative.ts";
import { encodeSeriesMessages } from "../../shared/envelope-encoder.ts";
import { encodeSeriesMessagesV4 } from "../helpers/envelope-v4-by-metric.ts";
import { decodeEnvelope, decodeMessage, type Envelope } from "../../shared/envelope.ts";
import { EXPANSION_LIMITS, REQUEST_LIMITS } from "../../shared/limits.ts";
import type { Metric } from "../../shared/metric-schema.ts";
import { pointIdentitiesOf, seriesMessageId, seriesRowKeys } from "../../shared/series-identity.ts";
import { rfc3339FromNanos } from "../../shared/timestamp.ts";
import { validateMetric } from "../../shared/validators.ts";
import { rowsOfEnvelope, rowsOfMessage } from "../../worker/metric-rows.ts";

const RECEIVED_AT = 1_777_593_600_000;
const MiB = 1024 * 1024;

function decoded(data: Uint8Array): { envelope: Envelope; version: number } {
  const result = decodeEnvelope(data);
  if (!result.ok) throw new Error(`${result.reason}: ${result.message}`);
  return result;
}

/** The one message of a batch as version `version` writes it. */
function only(version: 3 | 4, metrics: readonly Metric[]): Uint8Array {
  const encode = version === 3 ? encodeSeriesMessages : encodeSeriesMessagesV4;
  const messages = runToEnd(encode(metrics, RECEIVED_AT, 64 * MiB));
  expect(messages).toHaveLength(1);
  return (messages[0] as { data: Uint8Array }).data;
}

/**
 * Tag keys, but not a one-character key that JSON escapes (`"\""`, `"\n"`): V8's `JSON.parse`
 * reads such a key back as a backslash once any parse met the key `"\\"` (nodejs/node#63785,
 * docs/troubleshooting.md), so the round trip would fail by chance, not by the envelope.
 */
const tagKey = fc.oneof(
  fc.constantFrom("host", "region", "__proto__", "constructor", "10", "2", "a b", "é"),
  fc
    .string({ minLength: 1, maxLength: 12 })
    .filter((key) => key.length > 1 || JSON.stringify(key).length === 3),
);
const tagValue = fc.oneof(
  fc.constantFrom("", "a", "eu-west-1", "😀"),
  fc.string({ maxLength: 40 }),
);
const tagSet = fc
  .uniqueArray(fc.tuple(tagKey, tagValue), { selector: ([k]) => k, maxLength: 8 })
  .map((entries) => Object.fromEntries(entries) as Record<string, string>);
const nanos = fc.bigInt({ min: 0n, max: 253_402_300_799_999_999_999n });
const timestamp = fc.oneof(
  fc.integer({ min: 0, max: 253_402_300_799_999 }),
  nanos.map((ns) => rfc3339FromNanos(ns) as string),
  fc.constantFrom("2026-05-01T02:00:00+02:00", "2026-05-01 00:00:00.5z", "1970-01-01T00:00:00Z"),
);
/** Fields beside the columns, as the converters make them and as a hostile JSON might. */
const influxPart = fc.record({
  bucket: fc.constantFrom("b", "telegraf"),
  measurement: fc.constantFrom("cpu", "mem"),
  field: fc.constantFrom("usage", "free"),
  type: fc.constantFrom("float", "integer", "string"),
});
const extraValue = fc.oneof(
  fc.constantFrom(null, true, false, 0, -0, 1.5, -1e300, "", "sum", "__proto__"),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 20 }),
  fc.jsonValue({ maxDepth: 3 }),
);
const extras = fc.uniqueArray(
  fc.tuple(
    fc.oneof(
      fc.constantFrom("kind", "unit", "temporality", "monotonic", "startTime", "__proto__", "9"),
      fc.string({ minLength: 1, maxLength: 8 }),
    ),
    extraValue,
  ),
  { selector: ([k]) => k, maxLength: 4 },
);

/**
 * Agent batches as the converters make them: runs of points sharing one tag object and one
 * `influx` object (a line's fields, a series' samples), a string field's text on its own,
 * OTLP-like fields, points without tags, hostile field and tag names.
 */
const agentBatches = fc
  .array(
    fc.record({
      tags: tagSet,
      influx: influxPart,
      extra: extras,
      points: fc.array(
        fc.record({
          name: fc.constantFrom("cpu", "mem", "a_b", "é"),
          value: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(-0)),
          timestamp,
          text: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }),
          shape: fc.constantFrom("influx", "otlp", "remote-write", "untagged"),
        }),
        { minLength: 1, maxLength: 6 },
      ),
    }),
    { minLength: 1, maxLength: 5 },
  )
  .map((runs) =>
    runs.flatMap(({ tags, influx, extra, points }) =>
      points.map(({ name, value, timestamp: time, text, shape }): Metric => {
        const metric: Record<string, unknown> = { name, value, timestamp: time };
        if (shape !== "untagged") metric["tags"] = tags;
        if (shape === "influx")
          metric["influx"] = text === undefined ? influx : { ...influx, text };
        if (shape === "otlp") {
          for (const [field, v] of extra) {
            Object.defineProperty(metric, field, { value: v, enumerable: true, writable: true });
          }
        }
        return metric as Metric;
      }),
    ),
  )
  .filter((metrics) => metrics.every((m) => validateMetric(m)));

describe("envelope version 4", () => {
  it("makes the same rows, series and row keys as version 3 of the same batch", () => {
    fc.assert(
      fc.property(agentBatches, (metrics) => {
        const v3 = decoded(only(3, metrics));
        const v4 = decoded(only(4, metrics));
        expect(v3.version).toBe(3);
        expect(v4.version).toBe(4);
        expect(v4.envelope.id).toBe(v3.envelope.id);
        expect(v4.envelope.receivedAt).toBe(v3.envelope.receivedAt);
        expect(v4.envelope.key).toBe("series");
        expect(v4.envelope.metrics).toEqual(v3.envelope.metrics);
        expect(rowsOfEnvelope(v4.envelope)).toStrictEqual(rowsOfEnvelope(v3.envelope));
        // The worker's own path: rows straight from the columns, no metric per point.
        const columns = decodeMessage(only(4, metrics));
        if (!columns.ok) throw new Error(columns.message);
        expect(columns.version).toBe(4);
        expect(rowsOfMessage(columns)).toStrictEqual(rowsOfEnvelope(v3.envelope));
        expect(runToEnd(seriesRowKeys(v4.envelope.metrics, RECEIVED_AT))).toEqual(
          runToEnd(seriesRowKeys(v3.envelope.metrics, RECEIVED_AT)),
        );
      }),
      { numRuns: 500 },
    );
  });

  it("gives back each time as sent: integer milliseconds, or the same RFC 3339 text", () => {
    fc.assert(
      fc.property(fc.array(timestamp, { minLength: 1, maxLength: 20 }), (times) => {
        const metrics = times.map((t, i) => ({ name: "t", value: i, timestamp: t }));
        const { envelope } = decoded(only(4, metrics));
        expect(envelope.metrics.map((m) => m.timestamp)).toEqual(times);
      }),
      { numRuns: 300 },
    );
  });

  it("cuts messages within the size given, each id a digest of its own points", () => {
    fc.assert(
      fc.property(agentBatches, fc.integer({ min: 300, max: 3000 }), (metrics, maxBytes) => {
        const messages = runToEnd(encodeSeriesMessagesV4(metrics, RECEIVED_AT, maxBytes));
        let start = 0;
        for (const message of messages) {
          const { envelope } = decoded(message.data);
          const held = metrics.slice(start, start + message.metrics);
          if (message.metrics > 1) expect(message.data.byteLength).toBeLessThanOrEqual(maxBytes);
          expect(envelope.metrics).toEqual(decoded(only(3, held)).envelope.metrics);
          const identities = runToEnd(pointIdentitiesOf(held, RECEIVED_AT));
          expect(message.id).toBe(seriesMessageId(identities, 0, held.length));
          expect(envelope.id).toBe(message.id);
          start += message.metrics;
        }
        expect(start).toBe(metrics.length);
      }),
      { numRuns: 300 },
    );
  });

  it("holds at most a request's metrics per message", () => {
    const tags = { host: "a" };
    const metrics = Array.from({ length: 25_000 }, (_, i) => ({
      name: "m",
      value: i,
      timestamp: i,
      tags,
    }));
    const messages = runToEnd(encodeSeriesMessagesV4(metrics, RECEIVED_AT, MiB));
    expect(messages.map((m) => m.metrics)).toEqual([10_000, 10_000, 5_000]);
    expect(messages.flatMap((m) => decoded(m.data).envelope.metrics)).toEqual(metrics);
  });

  it("writes a series once and each of its points in at most 45 bytes", () => {
    const tags = Object.fromEntries(
      Array.from({ length: 20 }, (_, i) => [`key-${i}`, "v".repeat(50)]),
    );
    const influx = { bucket: "b", measurement: "cpu", field: "usage", type: "float" };
    const metrics = Array.from({ length: 1000 }, (_, i) => ({
      name: "cpu_usage",
      value: i / 3,
      timestamp: rfc3339FromNanos(BigInt(RECEIVED_AT + i) * 1_000_000n) as string,
      tags,
      influx,
    }));
    const data = only(4, metrics);
    expect(data.byteLength).toBeLessThan(2_000 + 1000 * 45);
    expect(data.byteLength).toBeLessThan(only(3, metrics).byteLength / 3);
  });
});

/** A valid version 4 message to break. */
function sample(): Uint8Array {
  const tags = { host: "web-1", region: "eu" };
  const influx = { bucket: "b", measurement: "cpu", field: "usage", type: "float" };
  return only(4, [
    { name: "cpu_usage", value: 1, timestamp: "2026-05-01T00:00:00.123456789Z", tags, influx },
    { name: "cpu_usage", value: 2, timestamp: 1_777_593_600_000, tags, kind: "sum", unit: "s" },
    { name: "mem", value: 3, timestamp: "2026-05-01T02:00:00+02:00" },
  ] as Metric[]);
}

/** The JSON of a version 4 message as an object, to alter. */
function parsed(data: Uint8Array): Record<string, unknown> & {
  series: Record<string, unknown>[];
  points: Record<string, number[]>;
} {
  return JSON.parse(Buffer.from(data).toString("utf8")) as ReturnType<typeof parsed>;
}

function bytesOf(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value));
}

/**
 * A message of one point whose columns say what the encoder would never write: its time (`ms`,
 * `ns`) and value patched in.
 */
function withPoint(point: { ms: number; ns: number; value: number | string }) {
  const message = parsed(only(4, [{ name: "m", value: 1, timestamp: 1, tags: { t: "y" } }]));
  message.points = { series: [0], ms: [point.ms], ns: [point.ns], value: [0] };
  // A value JSON cannot hold, such as 1e400, is written as its text.
  return Buffer.from(JSON.stringify(message).replace(/"value":\[0\]/, `"value":[${point.value}]`));
}

function refusal(data: Uint8Array): string {
  const result = decodeEnvelope(data);
  if (result.ok) throw new Error("decoded");
  return result.reason;
}

/** Decoded within the bounds, or refused as a message that can never be stored. */
function refusedOrBounded(data: Uint8Array): void {
  const result = decodeEnvelope(data);
  if (!result.ok) {
    expect(["undecodable", "invalid_envelope", "unknown_version"]).toContain(result.reason);
    return;
  }
  expect(result.envelope.metrics.length).toBeLessThanOrEqual(REQUEST_LIMITS.metricsPerRequest);
  for (const metric of result.envelope.metrics) expect(validateMetric(metric)).toBe(true);
}

describe("a hostile version 4 message", () => {
  it("is refused, never thrown, whatever its bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        refusedOrBounded(new Uint8Array([...Buffer.from('{"v":4,'), ...bytes]));
      }),
      { numRuns: 2000 },
    );
  });

  it("is refused or read within bounds whatever JSON it holds", () => {
    const valid = parsed(sample());
    const column = fc.oneof(
      fc.array(fc.oneof(fc.integer({ min: -2, max: 3 }), fc.double()), { maxLength: 4 }),
      fc.jsonValue({ maxDepth: 2 }),
    );
    fc.assert(
      fc.property(
        fc.record({
          series: fc.oneof(fc.constant(valid.series), fc.array(fc.jsonValue({ maxDepth: 3 }))),
          points: fc.oneof(
            fc.record({ series: column, ms: column, ns: column, value: column }),
            fc.jsonValue({ maxDepth: 2 }),
          ),
        }),
        ({ series, points }) => {
          refusedOrBounded(bytesOf({ ...valid, series, points }));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("is refused or read within bounds when a valid one is cut, stretched or altered", () => {
    const valid = sample();
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
          maxLength: 6,
        }),
        fc.nat(valid.length),
        fc.uint8Array({ maxLength: 8 }),
        (changes, cutAt, tail) => {
          const data = new Uint8Array([...valid]);
          for (const [at, byte] of changes) data[at] = byte;
          for (const altered of [
            data,
            data.subarray(0, cutAt),
            new Uint8Array([...data, ...tail]),
          ]) {
            refusedOrBounded(altered);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("is refused when cut anywhere or when its columns differ in length", () => {
    const valid = sample();
    expect(decoded(valid).envelope.metrics).toHaveLength(3);
    for (let end = 1; end < valid.length; end++) {
      expect(refusal(valid.subarray(0, end))).toBe("undecodable");
    }
    for (const column of ["series", "ms", "ns", "value"]) {
      const message = parsed(valid);
      message.points[column]?.pop();
      expect(refusal(bytesOf(message)), column).toBe("invalid_envelope");
    }
    const message = parsed(valid);
    message["extra"] = 1;
    expect(refusal(bytesOf(message))).toBe("invalid_envelope");
  });

  it("may not become more than a request may: tags once per point, past 16 MiB", () => {
    // 64 tags of 256 characters, ~17 KB stored with each of 10,000 points: ~170 MB, in a
    // message of a few hundred kilobytes.
    const tags = Object.fromEntries(
      Array.from({ length: 64 }, (_, i) => [`key-${i}`, "v".repeat(256)]),
    );
    const metrics = Array.from({ length: 10_000 }, (_, i) => ({
      name: "m",
      value: i,
      timestamp: i,
      tags,
    }));
    const data = only(4, metrics);
    expect(data.byteLength).toBeLessThan(MiB);
    const result = decodeEnvelope(data);
    expect(result).toMatchObject({ ok: false, reason: "invalid_envelope" });
    expect(!result.ok && result.message).toContain(String(EXPANSION_LIMITS.maxBytes));
  });

  it("holds at most a request's points, and only series indexes in range", () => {
    const message = parsed(only(4, [{ name: "m", value: 1, timestamp: 1 }]));
    const n = REQUEST_LIMITS.metricsPerRequest + 1;
    message.points = {
      series: new Array<number>(n).fill(0),
      ms: new Array<number>(n).fill(1),
      ns: new Array<number>(n).fill(-1),
      value: new Array<number>(n).fill(1),
    };
    expect(refusal(bytesOf(message))).toBe("invalid_envelope");
    message.points = { series: [1], ms: [1], ns: [-1], value: [1] };
    expect(refusal(bytesOf(message))).toBe("invalid_envelope");
  });

  it("is refused when a series breaks the Metric schema or a point's value or time is not one", () => {
    const bad: unknown[] = [
      { name: "x".repeat(300), value: 1, timestamp: 1 },
      { name: "a\u0000b", value: 1, timestamp: 1 },
      { name: "m", value: 1, timestamp: 1, tags: { "": "x" } },
      { name: "m", value: 1, timestamp: 1, deep: [[[[[[[[[[1]]]]]]]]]] },
      { name: "m", value: 1, timestamp: 1, long: "x".repeat(5000) },
      {
        name: "m",
        value: 1,
        timestamp: 1,
        ...Object.fromEntries(Array.from({ length: 98 }, (_, i) => [`f${i}`, i])),
      },
    ];
    for (const metric of bad) {
      expect(validateMetric(metric), JSON.stringify(metric).slice(0, 80)).toBe(false);
      const data = only(4, [metric as Metric]);
      expect(refusal(data), JSON.stringify(metric).slice(0, 80)).toBe("invalid_envelope");
    }
    expect(decoded(withPoint({ ms: 5, ns: -1, value: 2 })).envelope.metrics).toEqual([
      { name: "m", value: 2, timestamp: 5, tags: { t: "y" } },
    ]);
    expect(decoded(withPoint({ ms: 5, ns: 7, value: 2 })).envelope.metrics[0]?.timestamp).toBe(
      "1970-01-01T00:00:00.005000007Z",
    );
    const points = [
      { ms: 1, ns: -1, value: "1e400" },
      { ms: 1, ns: -1, value: "-1e400" },
      { ms: -1, ns: -1, value: 1 },
      { ms: 1.5, ns: -1, value: 1 },
      { ms: 1.5, ns: 0, value: 1 },
      { ms: 253_402_300_800_000, ns: -1, value: 1 },
      { ms: 1, ns: 1_000_000, value: 1 },
      { ms: 1, ns: -2, value: 1 },
      { ms: 1, ns: 0.5, value: 1 },
      { ms: 1, ns: -1, value: '"1"' },
    ];
    for (const point of points) {
      expect(refusal(withPoint(point)), JSON.stringify(point)).toBe("invalid_envelope");
    }
    const message = parsed(
      only(4, [{ name: "m", value: 1, timestamp: "2026-05-01T02:00:00+02:00" }]),
    );
    expect(decoded(bytesOf(message)).envelope.metrics[0]?.timestamp).toBe(
      "2026-05-01T02:00:00+02:00",
    );
    message.points["ms"] = [1];
    expect(refusal(bytesOf(message))).toBe("invalid_envelope");
    const withValue = parsed(sample());
    (withValue.series[0] as Record<string, unknown>)["value"] = 1;
    expect(refusal(bytesOf(withValue))).toBe("invalid_envelope");
  });

  it("checks a series seen before as the first time, a bad one refused wherever it comes", () => {
    const good = { name: "m", value: 1, timestamp: 1, tags: { t: "y" } };
    const bad = { name: "m", value: 1, timestamp: 1, tags: { "": "x" } };
    for (let round = 0; round < 3; round++) {
      expect(decoded(only(4, [good])).envelope.metrics).toEqual([good]);
      for (const [metrics, index] of [
        [[bad], 0],
        [[good, bad], 1],
      ] as const) {
        const result = decodeEnvelope(only(4, metrics));
        expect(result.ok ? "decoded" : result.message).toMatch(
          new RegExp(`^/series/${index}/tags`),
        );
      }
    }
  });

  it("refuses a lone surrogate as version 3 does (the edge refused it before)", () => {
    const metrics = [{ name: "m", value: 1, timestamp: 1, tags: { a: "\ud800" } }];
    expect(refusal(only(4, metrics))).toBe(refusal(only(3, metrics)));
  });

  it("is undecodable when its text is not UTF-8", () => {
    const data = new Uint8Array([...sample()]);
    // Inside the id's text: a lone continuation byte.
    data[data.indexOf(0x3a) + 3] = 0x80;
    expect(refusal(data)).toBe("undecodable");
  });

  it("needs a name on every point of a series-keyed message", () => {
    const data = only(4, [{ value: 1, timestamp: 1 }]);
    expect(decodeEnvelope(data)).toMatchObject({ ok: false, reason: "invalid_envelope" });
  });
});
