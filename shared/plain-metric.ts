/**
 * The common metric answered without the schema: `{value, name?, timestamp?, tags?}`, the
 * timestamp in integer milliseconds. `isPlainMetric` is true only for such a metric that the
 * Metric schema (shared/metric-schema.ts) accepts, and false for anything else, valid or not:
 * false says nothing, and the caller asks the compiled validator, which also names what is wrong.
 * The JSON API's batches are mostly such metrics, and ajv's code spent ~0.4 µs on each, walking
 * it four times; this walks it once in a third of that (bench/notes.md). A property test holds
 * the two to the same answer on every metric of this form (test/unit/plain-metric.test.ts).
 */
import { METRIC_BOUNDS } from "./limits.ts";
import type { Metric } from "./metric-schema.ts";
import { isStorableText } from "./storable-text.ts";

export function isPlainMetric(value: unknown): value is Metric {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const fields = value as Readonly<Record<string, unknown>>;
  let hasValue = false;
  for (const key in fields) {
    const field = fields[key];
    switch (key) {
      case "value":
        if (typeof field !== "number" || !Number.isFinite(field)) return false;
        hasValue = true;
        break;
      case "name":
        if (!isBoundedText(field, 1, METRIC_BOUNDS.nameLength)) return false;
        break;
      case "timestamp":
        if (!isTimestampMs(field)) return false;
        break;
      case "tags":
        if (!isPlainTags(field)) return false;
        break;
      default:
        return false;
    }
  }
  return hasValue;
}

function isPlainTags(tags: unknown): boolean {
  if (typeof tags !== "object" || tags === null || Array.isArray(tags)) return false;
  const entries = tags as Readonly<Record<string, unknown>>;
  let count = 0;
  for (const key in entries) {
    if (++count > METRIC_BOUNDS.tagCount) return false;
    if (!isBoundedText(key, 1, METRIC_BOUNDS.tagKeyLength)) return false;
    if (!isBoundedText(entries[key], 0, METRIC_BOUNDS.tagValueLength)) return false;
  }
  return true;
}

function isTimestampMs(time: unknown): boolean {
  return (
    Number.isInteger(time) &&
    (time as number) >= METRIC_BOUNDS.minTimestampMs &&
    (time as number) <= METRIC_BOUNDS.maxTimestampMs
  );
}

/**
 * A storable string (`STORABLE_TEXT`) of `min` to `max` UTF-16 units. The schema counts
 * characters (code points), never more than units: a string within bounds here is within them
 * there, and one that is not may still be (characters outside the BMP) — the schema decides.
 */
function isBoundedText(text: unknown, min: number, max: number): boolean {
  return (
    typeof text === "string" && text.length >= min && text.length <= max && isStorableText(text)
  );
}
