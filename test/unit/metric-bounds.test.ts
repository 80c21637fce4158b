import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { withinBounds } from "../../shared/metric-bounds.ts";
import { METRIC_BOUNDS } from "../../shared/limits.ts";
import {
  canonicalTimeMs,
  measurementTimeNs,
  measurementTimeNsText,
  parseRfc3339,
  rfc3339FromNanos,
} from "../../shared/timestamp.ts";
import { decodeMessage } from "../../shared/envelope.ts";
import { validateEnvelopeV2, validateMetric } from "../../shared/validators.ts";

/**
 * The cheap check of the metrics our converters make must never pass what the schema refuses:
 * whatever it passes, the compiled validator passes too, and it passes what the converters
 * make (else every metric would still go through the schema).
 */
const MAX_NS = BigInt(METRIC_BOUNDS.maxTimestampMs) * 1_000_000n + 999_999n;
const nanos = fc.bigInt({ min: 0n, max: MAX_NS });
const text = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.constantFrom("", "\u0000", "a\ud800", "\udc00b", "😀", "x".repeat(257), "x".repeat(4097)),
);
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    text,
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(text, tie("value"), { maxKeys: 3 }),
  ),
})).value;
const candidate = fc.record(
  {
    value: fc.oneof(fc.double(), fc.constant("1")),
    name: text,
    timestamp: fc.oneof(
      nanos.map((ns) => rfc3339FromNanos(ns)),
      fc.integer({ min: -10, max: Number.MAX_SAFE_INTEGER }),
      fc.double(),
      text,
      fc.constantFrom("2024-02-30T00:00:00.000000000Z", "2023-02-29T00:00:00.000000000Z"),
    ),
    tags: fc.oneof(fc.dictionary(text, text, { maxKeys: 70 }), fc.constant([]), json),
    extra: json,
  },
  { requiredKeys: [] },
);

describe("withinBounds", () => {
  it("passes only metrics the schema passes", () => {
    fc.assert(
      fc.property(candidate, (metric) => {
        if (withinBounds(metric) !== undefined) expect(validateMetric(metric)).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  it("passes what the agent converters make, with the time they carry", () => {
    const tags = { host: "web-1", region: "eu-west-1" };
    const metric = {
      name: "cpu_usage_user",
      value: 0.5,
      timestamp: rfc3339FromNanos(1_777_593_600_123_456_789n),
      tags,
      influx: { org: "acme", bucket: "b", measurement: "cpu", field: "usage_user", type: "float" },
    };
    expect(withinBounds(metric)).toEqual({ timeMs: 1_777_593_600_123 });
    expect(withinBounds({ ...metric, timestamp: 1_777_593_600_000 })).toEqual({
      timeMs: 1_777_593_600_000,
    });
    expect(withinBounds({ value: 1 })).toEqual({ timeMs: undefined });
  });

  it("leaves to the schema what it is not sure of", () => {
    for (const unsure of [
      { value: Number.NaN },
      { name: "x" },
      { value: 1, name: "" },
      { value: 1, name: "a\u0000b" },
      { value: 1, name: "😀".repeat(200) },
      { value: 1, timestamp: "2024-01-01T00:00:00Z" },
      { value: 1, tags: { "": "x" } },
      { value: 1, deep: [[[[[1]]]]] },
    ]) {
      expect(withinBounds(unsure)).toBeUndefined();
    }
  });
});

describe("a version 2 message, its metrics checked by their bounds", () => {
  it("is read exactly when the whole envelope schema passes it, and refused with its reason", () => {
    const envelope = fc.record(
      {
        v: fc.constant(2),
        id: fc.oneof(fc.constant("m-1"), fc.constant("")),
        receivedAt: fc.oneof(fc.constant(1_764_547_200_000), fc.constant(-1)),
        key: fc.constantFrom("message", "series", "other"),
        metrics: fc.array(fc.oneof(candidate, fc.constant({ value: 1 })), { maxLength: 4 }),
      },
      { requiredKeys: ["v", "metrics"] },
    );
    fc.assert(
      fc.property(envelope, (value) => {
        const decoded = decodeMessage(new TextEncoder().encode(JSON.stringify(value)));
        const valid = validateEnvelopeV2(JSON.parse(JSON.stringify(value)));
        if (valid && value.key === "message") expect(decoded.ok).toBe(true);
        if (!valid) {
          expect(decoded).toMatchObject({ ok: false, reason: "invalid_envelope" });
          const first = validateEnvelopeV2.errors?.[0];
          expect(decoded.ok || decoded.message).toBe(
            `${first?.instancePath ?? ""} ${first?.message ?? ""}`.trim(),
          );
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe("canonical times", () => {
  it("read back exactly what rfc3339FromNanos wrote, as parseRfc3339 reads it", () => {
    fc.assert(
      fc.property(nanos, (ns) => {
        const time = rfc3339FromNanos(ns) ?? "";
        expect(canonicalTimeMs(time)).toBe(parseRfc3339(time));
        expect(measurementTimeNsText(time, 0)).toBe(String(ns));
      }),
      { numRuns: 5000 },
    );
  });

  it("read no other text as a time parseRfc3339 would not", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 30, maxLength: 30 }), (time) => {
        const ms = canonicalTimeMs(time);
        if (ms !== undefined) expect(ms).toBe(parseRfc3339(time));
      }),
    );
    expect(canonicalTimeMs("2024-02-30T00:00:00.000000000Z")).toBeUndefined();
    expect(canonicalTimeMs("2024-02-29T00:00:00.000000000Z")).toBe(Date.UTC(2024, 1, 29));
    expect(canonicalTimeMs("1900-02-29T00:00:00.000000000Z")).toBeUndefined();
    expect(canonicalTimeMs("2024-01-01T00:00:00.000000000+00:00")).toBeUndefined();
  });

  it("give series keys the same nanoseconds as measurementTimeNs, for every kind of timestamp", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constant(undefined),
          fc.integer({ min: 0, max: METRIC_BOUNDS.maxTimestampMs }),
          nanos.map((ns) => rfc3339FromNanos(ns)),
          fc.constantFrom("2024-01-01T00:00:00.5+01:00", "1970-01-01T00:00:00Z"),
        ),
        fc.integer({ min: 0, max: METRIC_BOUNDS.maxTimestampMs }),
        (timestamp, receivedAt) => {
          expect(measurementTimeNsText(timestamp, receivedAt)).toBe(
            String(measurementTimeNs(timestamp, receivedAt)),
          );
        },
      ),
      { numRuns: 5000 },
    );
  });
});

/** Lengths at and around every bound a metric's strings have. */
const lengths = fc.constantFrom(0, 1, 2, 127, 128, 129, 255, 256, 257);
/** Characters that matter: plain, two-byte, NUL, lone surrogates, and one outside the BMP. */
const unit = fc.constantFrom("a", "a", "a", "é", "\u0000", "\ud800", "\udc00", "😀", "\n");

/** Strings of a length near a bound, mostly of one character with a few others put in. */
const boundedText = fc
  .tuple(lengths, fc.array(fc.tuple(fc.nat(), unit), { maxLength: 2 }))
  .map(([length, others]) => {
    const chars = Array.from({ length }, () => "x");
    for (const [at, char] of others) if (length > 0) chars[at % length] = char;
    return chars.join("");
  });

const tagValue = fc.oneof(
  { weight: 8, arbitrary: boundedText },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.constant(null), fc.constant({ x: "y" })) },
);

const boundedTags = fc.oneof(
  fc.dictionary(boundedText, tagValue, { maxKeys: 4 }),
  // Around the count bound.
  fc
    .constantFrom(METRIC_BOUNDS.tagCount - 1, METRIC_BOUNDS.tagCount, METRIC_BOUNDS.tagCount + 1)
    .map((count) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, "v"]))),
  fc.constantFrom(null, [], "host=a", 1),
);

const timeMs = fc.oneof(
  fc.constantFrom(
    METRIC_BOUNDS.minTimestampMs - 1,
    METRIC_BOUNDS.minTimestampMs,
    METRIC_BOUNDS.maxTimestampMs,
    METRIC_BOUNDS.maxTimestampMs + 1,
    1_796_000_000_000.5,
    Number.NaN,
  ),
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  fc.constant("2026-12-05T10:00:00Z"),
);

const nearBounds = fc
  .tuple(
    fc.record(
      {
        value: fc.oneof(
          { weight: 8, arbitrary: fc.double() },
          { weight: 1, arbitrary: fc.constantFrom("1", null) },
        ),
        name: fc.oneof(
          { weight: 8, arbitrary: boundedText },
          { weight: 1, arbitrary: fc.constant(1) },
        ),
        timestamp: timeMs,
        tags: boundedTags,
      },
      { requiredKeys: [] },
    ),
    fc.boolean(),
  )
  .map(([metric, extra]) => (extra ? { ...metric, extra: "field" } : metric));

/** Whether withinBounds answers the metric exactly: four fields, a time in ms, the BMP. */
function ofPlainForm(metric: Readonly<Record<string, unknown>>): boolean {
  return (
    !("extra" in metric) &&
    typeof metric["timestamp"] !== "string" &&
    !JSON.stringify(metric).includes("😀")
  );
}

describe("withinBounds at and around every bound", () => {
  it("says yes only where the schema does, and as it does for value, name, tags and a time in ms", () => {
    let plain = 0;
    let refused = 0;
    fc.assert(
      fc.property(nearBounds, (metric) => {
        const fast = withinBounds(metric, { keepTags: false }) !== undefined;
        const schema = validateMetric(metric);
        if (fast) expect(schema).toBe(true);
        if (ofPlainForm(metric)) expect(fast).toBe(schema);
        if (fast) plain++;
        else if (ofPlainForm(metric)) refused++;
      }),
      { numRuns: 20000 },
    );
    // Both answers were given often: the test compared more than one side of the bounds.
    expect(plain).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(500);
  });
});
