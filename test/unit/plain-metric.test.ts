import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { METRIC_BOUNDS } from "../../shared/limits.ts";
import { isPlainMetric } from "../../shared/plain-metric.ts";
import { validateMetric } from "../../shared/validators.ts";

/** Lengths at and around every bound a metric's strings have. */
const lengths = fc.constantFrom(0, 1, 2, 127, 128, 129, 255, 256, 257);
/** Characters that matter: plain, two-byte, NUL, lone surrogates, and one outside the BMP. */
const unit = fc.constantFrom("a", "a", "a", "é", "\u0000", "\ud800", "\udc00", "😀", "\n");

/** Strings of a length near a bound, mostly of one character with a few others put in. */
const text = fc
  .tuple(lengths, fc.array(fc.tuple(fc.nat(), unit), { maxLength: 2 }))
  .map(([length, others]) => {
    const chars = Array.from({ length }, () => "x");
    for (const [at, char] of others) if (length > 0) chars[at % length] = char;
    return chars.join("");
  });

const tagValue = fc.oneof(
  { weight: 8, arbitrary: text },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.constant(null), fc.constant({ x: "y" })) },
);

const tags = fc.oneof(
  fc.dictionary(text, tagValue, { maxKeys: 4 }),
  // Around the count bound.
  fc
    .constantFrom(METRIC_BOUNDS.tagCount - 1, METRIC_BOUNDS.tagCount, METRIC_BOUNDS.tagCount + 1)
    .map((count) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, "v"]))),
  fc.constantFrom(null, [], "host=a", 1),
);

const timestamp = fc.oneof(
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

const metricLike = fc
  .tuple(
    fc.record(
      {
        value: fc.oneof(
          { weight: 8, arbitrary: fc.double() },
          { weight: 1, arbitrary: fc.constantFrom("1", null) },
        ),
        name: fc.oneof({ weight: 8, arbitrary: text }, { weight: 1, arbitrary: fc.constant(1) }),
        timestamp,
        tags,
      },
      { requiredKeys: [] },
    ),
    fc.boolean(),
  )
  .map(([metric, extra]) => (extra ? { ...metric, extra: "field" } : metric));

/** Whether the metric is of the form isPlainMetric answers: four fields, a time in ms, the BMP. */
function ofPlainForm(metric: Readonly<Record<string, unknown>>): boolean {
  return (
    !("extra" in metric) &&
    typeof metric["timestamp"] !== "string" &&
    !JSON.stringify(metric).includes("😀")
  );
}

describe("isPlainMetric", () => {
  it("says yes only where the Metric schema does, and as it does for metrics of its form", () => {
    let plain = 0;
    let refused = 0;
    fc.assert(
      fc.property(metricLike, (metric) => {
        const fast = isPlainMetric(metric);
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

  it("leaves to the schema what it does not answer", () => {
    expect(isPlainMetric({ value: 1, timestamp: "2026-12-05T10:00:00Z" })).toBe(false);
    expect(isPlainMetric({ value: 1, unit: "ms" })).toBe(false);
    expect(isPlainMetric({ value: 1, name: "😀".repeat(200) })).toBe(false);
    expect(validateMetric({ value: 1, name: "😀".repeat(200) })).toBe(true);
    expect(isPlainMetric({ value: 1, name: "cpu", tags: { host: "a" }, timestamp: 0 })).toBe(true);
  });
});
