/**
 * A cheap check of a metric: plain bounds checks that, when they pass, the Metric schema's
 * compiled validator would pass too. It is conservative: anything it is not sure of (an unusual
 * shape, a string it would have to measure in code points, a timestamp not written by
 * `rfc3339FromNanos`) answers undefined, and the caller asks the schema, which also says what
 * is wrong. The metrics our converters make pass here, and so do the JSON API's common ones
 * (value, name, tags, a time in milliseconds), so each is checked once, by bounds, in one walk,
 * at the edge and again in the worker (a version 2 message's metrics, shared/envelope.ts):
 * ajv's code walks a metric four times and counts every string's code points in a loop, ~3×
 * the time (bench/notes.md).
 */
import { METRIC_BOUNDS } from "./limits.ts";
import { isStorableText } from "./storable-text.ts";
import { canonicalTimeMs, isInRange } from "./timestamp.ts";

/** What a metric within bounds is measured at: its timestamp in milliseconds, if it has one. */
export interface WithinBounds {
  readonly timeMs: number | undefined;
}

const NONE: WithinBounds = { timeMs: undefined };

/**
 * Tag sets already found within bounds. The converters share one object among the metrics of
 * a line, a series or a scope and never change it once made, so each is checked once.
 */
const checkedTags = new WeakSet<object>();

export interface BoundsOptions {
  /**
   * Remember a tag set found within bounds (default): the converters' metrics share one, a JSON
   * body's each have their own, which remembering would only cost (~0.3 µs a metric).
   */
  readonly keepTags?: boolean;
}

/** `candidate` is certainly a valid Metric: its time; undefined when the schema must decide. */
export function withinBounds(
  candidate: unknown,
  options: BoundsOptions = {},
): WithinBounds | undefined {
  if (!isPlainObject(candidate)) return undefined;
  let keys = 0;
  let timeMs: number | undefined;
  let hasValue = false;
  for (const key in candidate) {
    if (!Object.hasOwn(candidate, key)) return undefined;
    keys++;
    const field = candidate[key];
    switch (key) {
      case "value":
        if (typeof field !== "number" || !Number.isFinite(field)) return undefined;
        hasValue = true;
        break;
      case "name":
        if (!storable(field, METRIC_BOUNDS.nameLength) || field.length === 0) return undefined;
        break;
      case "timestamp":
        if (typeof field === "number") {
          if (!isInRange(field)) return undefined;
          timeMs = field;
        } else if (typeof field === "string") {
          timeMs = canonicalTimeMs(field);
          if (timeMs === undefined) return undefined;
        } else return undefined;
        break;
      case "tags":
        if (!tagsWithinBounds(field, options.keepTags ?? true)) return undefined;
        break;
      default:
        if (!storable(key, METRIC_BOUNDS.stringLength)) return undefined;
        if (!jsonWithinBounds(field, MAX_DEPTH)) return undefined;
    }
  }
  if (!hasValue || keys > METRIC_BOUNDS.objectProperties) return undefined;
  return timeMs === undefined ? NONE : { timeMs };
}

/**
 * Levels of arrays and objects checked here inside an extra field; deeper values (which the
 * converters do not make) go to the schema, which allows `METRIC_BOUNDS.extraDepth`.
 */
const MAX_DEPTH = Math.min(4, METRIC_BOUNDS.extraDepth);

function tagsWithinBounds(tags: unknown, keep: boolean): boolean {
  if (!isPlainObject(tags)) return false;
  if (checkedTags.has(tags)) return true;
  let count = 0;
  for (const key in tags) {
    if (!Object.hasOwn(tags, key)) return false;
    if (++count > METRIC_BOUNDS.tagCount) return false;
    if (key.length === 0 || !storable(key, METRIC_BOUNDS.tagKeyLength)) return false;
    if (!storable(tags[key], METRIC_BOUNDS.tagValueLength)) return false;
  }
  if (keep) checkedTags.add(tags);
  return true;
}

/** A value of an extra field: JSON nested at most `depth` more levels, within the bounds. */
function jsonWithinBounds(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value);
    case "string":
      return storable(value, METRIC_BOUNDS.stringLength);
    case "object":
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth === 0) return false;
  if (Array.isArray(value)) {
    if (value.length > METRIC_BOUNDS.arrayItems) return false;
    for (const item of value) if (!jsonWithinBounds(item, depth - 1)) return false;
    return true;
  }
  if (!isPlainObject(value)) return false;
  let count = 0;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) return false;
    if (++count > METRIC_BOUNDS.objectProperties) return false;
    if (!storable(key, METRIC_BOUNDS.stringLength)) return false;
    if (!jsonWithinBounds(value[key], depth - 1)) return false;
  }
  return true;
}

/**
 * Text the schema's `STORABLE_TEXT` pattern and `maxLength` take: no NUL, no lone surrogate,
 * and at most `max` UTF-16 units (never fewer code points than that, which the schema counts:
 * text of characters outside the BMP near the bound is left to it).
 */
function storable(text: unknown, max: number): text is string {
  return typeof text === "string" && text.length <= max && isStorableText(text);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
