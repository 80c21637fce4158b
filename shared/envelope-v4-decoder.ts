/**
 * Reads a version 4 message (layout: shared/envelope-v4-layout.ts) back into the `Envelope`
 * version 3 gives for the same metrics, with the same guarantees: each series' name, tags and
 * fields pass the same compiled Metric schema (checked once per series, not per point), each
 * point's value and time are checked as the schema would, and a message never becomes more than
 * a request may (at most 10,000 metrics, each series' metric as stored counted once for each of
 * its points against `EXPANSION_LIMITS.maxBytes`). Every count is checked against the bytes
 * left before anything is made from it.
 */
import type { Envelope } from "./envelope-schema.ts";
import { FIELD, KEYS, MAX_SERIES, SAMPLE_BYTES, TIME, V4 } from "./envelope-v4-layout.ts";
import { EXPANSION_LIMITS, METRIC_BOUNDS, REQUEST_LIMITS } from "./limits.ts";
import type { Metric } from "./metric-schema.ts";
import { isInRange, isRfc3339 } from "./timestamp.ts";
import { validateMetric } from "./validators.ts";

export type ReadV4 =
  { readonly envelope: Envelope } | { readonly invalid: string } | { readonly undecodable: string };

/** A version 4 message: its envelope, or why it cannot be one. Never throws. */
export function readV4(data: Uint8Array): ReadV4 {
  try {
    return { envelope: read(new Reader(data)) };
  } catch (err) {
    if (err instanceof Invalid) return { invalid: err.message };
    if (err instanceof Undecodable) return { undecodable: err.message };
    return { undecodable: `not a version 4 envelope: ${String(err)}` };
  }
}

class Invalid extends Error {}
class Undecodable extends Error {}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function read(input: Reader): Envelope {
  if (input.u8() !== V4) throw new Invalid("not version 4");
  const key = KEYS[input.u8()];
  if (key === undefined) throw new Invalid("/key is neither message nor series");
  const id = input.text(input.u16());
  if (id.length === 0 || id.length > REQUEST_LIMITS.idempotencyKeyLength) {
    throw new Invalid(`/id must be 1 to ${REQUEST_LIMITS.idempotencyKeyLength} characters`);
  }
  const receivedAt = input.f64();
  if (!Number.isInteger(receivedAt) || receivedAt < 0) {
    throw new Invalid("/receivedAt must be an integer ≥ 0");
  }
  const strings = readStrings(input);
  const tagSets = readTagSets(input, strings);
  const series = readSeries(input, strings, tagSets);
  const metrics = readSamples(input, strings, series);
  if (input.left !== 0) throw new Invalid(`${input.left} bytes after the last column`);
  return { id, receivedAt, key, metrics };
}

function readStrings(input: Reader): readonly string[] {
  const count = input.count(4, "strings");
  const lengths = new Array<number>(count);
  let units = 0;
  for (let i = 0; i < count; i++) {
    const length = input.u32();
    lengths[i] = length;
    units += length;
  }
  const blob = input.text(input.u32());
  if (units !== blob.length) throw new Invalid("/strings' lengths do not add up to their text");
  const strings = new Array<string>(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const length = lengths[i] as number;
    strings[i] = blob.slice(at, at + length);
    at += length;
  }
  return strings;
}

function readTagSets(
  input: Reader,
  strings: readonly string[],
): readonly Readonly<Record<string, string>>[] {
  const count = input.count(1, "tag sets");
  const sets = new Array<Record<string, string>>(count);
  for (let t = 0; t < count; t++) {
    const entries = input.u8();
    if (entries > METRIC_BOUNDS.tagCount) {
      throw new Invalid(`/tagSets/${t} has more than ${METRIC_BOUNDS.tagCount} tags`);
    }
    const tags: Record<string, string> = {};
    for (let e = 0; e < entries; e++) {
      setField(tags, stringAt(strings, input.u32()), stringAt(strings, input.u32()));
    }
    sets[t] = tags;
  }
  return sets;
}

/** What the points of one series share, as its metrics carry it. */
interface Series {
  readonly name: string | undefined;
  readonly tags: Readonly<Record<string, string>> | undefined;
  readonly fields: readonly (readonly [string, unknown])[];
  /** Checked against the schema: bit 1 without a timestamp, bit 2 with one. */
  checked: number;
  /** Its metric's bytes as stored (value and time apart); 0 until checked. */
  bytes: number;
}

function readSeries(
  input: Reader,
  strings: readonly string[],
  tagSets: readonly Readonly<Record<string, string>>[],
): readonly Series[] {
  const count = input.count(9, "series");
  if (count > Math.min(MAX_SERIES, REQUEST_LIMITS.metricsPerRequest)) {
    throw new Invalid(`holds more than ${REQUEST_LIMITS.metricsPerRequest} series`);
  }
  const parsed = new Map<number, unknown>();
  const series = new Array<Series>(count);
  for (let r = 0; r < count; r++) {
    const name = input.u32();
    const tags = input.u32();
    const fieldCount = input.u8();
    if (fieldCount > METRIC_BOUNDS.objectProperties) {
      throw new Invalid(`/series/${r} has more than ${METRIC_BOUNDS.objectProperties} fields`);
    }
    const fields: [string, unknown][] = [];
    const seen = new Set<string>();
    for (let f = 0; f < fieldCount; f++) {
      const field = stringAt(strings, input.u32());
      if (COLUMNS.has(field) || seen.has(field)) {
        throw new Invalid(`/series/${r} has the field ${JSON.stringify(field)} twice`);
      }
      seen.add(field);
      fields.push([field, fieldValue(input, strings, parsed)]);
    }
    series[r] = {
      name: name === 0 ? undefined : stringAt(strings, name - 1),
      tags: tags === 0 ? undefined : itemAt(tagSets, tags - 1, "tag set"),
      fields,
      checked: 0,
      bytes: 0,
    };
  }
  return series;
}

const COLUMNS = new Set(["name", "value", "timestamp", "tags"]);

function fieldValue(input: Reader, strings: readonly string[], parsed: Map<number, unknown>) {
  const kind = input.u8();
  switch (kind) {
    case FIELD.null:
      return null;
    case FIELD.false:
      return false;
    case FIELD.true:
      return true;
    case FIELD.number: {
      const n = input.f64();
      if (!Number.isFinite(n)) throw new Invalid("a field's number is not finite");
      return n;
    }
    case FIELD.string:
      return stringAt(strings, input.u32());
    case FIELD.json: {
      const index = input.u32();
      // Parsed once however many series share it; the schema bounds its depth and size.
      if (!parsed.has(index)) {
        try {
          parsed.set(index, JSON.parse(stringAt(strings, index)));
        } catch (err) {
          if (err instanceof Invalid) throw err;
          throw new Invalid(`a field's JSON does not parse: ${String(err)}`);
        }
      }
      return parsed.get(index);
    }
    default:
      throw new Invalid(`a field of unknown kind ${kind}`);
  }
}

function readSamples(
  input: Reader,
  strings: readonly string[],
  series: readonly Series[],
): Metric[] {
  const count = input.u32();
  if (count === 0 || count > REQUEST_LIMITS.metricsPerRequest) {
    throw new Invalid(`must hold 1 to ${REQUEST_LIMITS.metricsPerRequest} metrics`);
  }
  if (input.left < count * SAMPLE_BYTES) throw new Invalid("ends inside its columns");
  const at = input.skip(count * SAMPLE_BYTES);
  const view = input.view;
  const kindsAt = at + 2 * count;
  const timesAt = kindsAt + count;
  const detailsAt = timesAt + 8 * count;
  const valuesAt = detailsAt + 4 * count;
  const metrics = new Array<Metric>(count);
  let storedBytes = 0;
  let lastMs = -1;
  let lastDetail = -1;
  let lastText = "";
  for (let i = 0; i < count; i++) {
    const s = itemAt(series, view.getUint16(at + 2 * i, true), "series");
    const kind = view.getUint8(kindsAt + i);
    const ms = view.getFloat64(timesAt + 8 * i, true);
    const detail = view.getUint32(detailsAt + 4 * i, true);
    const value = view.getFloat64(valuesAt + 8 * i, true);
    if (!Number.isFinite(value)) throw new Invalid(`/metrics/${i}/value must be a finite number`);
    let timestamp: string | number | undefined;
    switch (kind) {
      case TIME.none:
        break;
      case TIME.milliseconds:
        if (!isInRange(ms)) throw new Invalid(`/metrics/${i}/timestamp is out of range`);
        timestamp = ms;
        break;
      case TIME.canonical:
        if (ms !== lastMs || detail !== lastDetail) {
          if (!isInRange(ms) || detail >= 1_000_000) {
            throw new Invalid(`/metrics/${i}/timestamp is out of range`);
          }
          // As rfc3339FromNanos writes it: "YYYY-MM-DDTHH:MM:SS.mmm" and six more digits.
          lastText = `${new Date(ms).toISOString().slice(0, -1)}${String(detail).padStart(6, "0")}Z`;
          lastMs = ms;
          lastDetail = detail;
        }
        timestamp = lastText;
        break;
      case TIME.text: {
        const text = stringAt(strings, detail);
        if (text.length > 64 || !isRfc3339(text)) {
          throw new Invalid(`/metrics/${i}/timestamp is not an RFC 3339 date-time`);
        }
        timestamp = text;
        break;
      }
      default:
        throw new Invalid(`/metrics/${i} has a time of unknown kind ${kind}`);
    }
    storedBytes += checkSeries(s, timestamp !== undefined, i);
    if (storedBytes > EXPANSION_LIMITS.maxBytes) {
      throw new Invalid(
        `its metrics would take more than ${EXPANSION_LIMITS.maxBytes} bytes as stored`,
      );
    }
    metrics[i] = metricOf(s, value, timestamp);
  }
  return metrics;
}

/**
 * The series' metric checked against the Metric schema (with a time or without, as a point
 * has it: the time counts towards its fields), once per series; its bytes as stored.
 */
function checkSeries(series: Series, timed: boolean, index: number): number {
  const bit = timed ? 2 : 1;
  if ((series.checked & bit) === 0) {
    const candidate = metricOf(series, 0, timed ? 0 : undefined);
    if (!validateMetric(candidate)) {
      const first = validateMetric.errors?.[0];
      throw new Invalid(
        `/metrics/${index}${first?.instancePath ?? ""} ${first?.message ?? "is invalid"}`,
      );
    }
    series.checked |= bit;
    if (series.bytes === 0) series.bytes = Buffer.byteLength(JSON.stringify(candidate));
  }
  return series.bytes;
}

function metricOf(series: Series, value: number, timestamp: string | number | undefined): Metric {
  const metric: Record<string, unknown> = {};
  if (series.name !== undefined) metric["name"] = series.name;
  metric["value"] = value;
  if (timestamp !== undefined) metric["timestamp"] = timestamp;
  if (series.tags !== undefined) metric["tags"] = series.tags;
  for (const [field, v] of series.fields) setField(metric, field, v);
  return metric as Metric;
}

/** Sets a field as JSON.parse would: a field named `__proto__` is data like any other. */
function setField(target: Record<string, unknown>, field: string, value: unknown): void {
  if (field === "__proto__") {
    Object.defineProperty(target, field, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    target[field] = value;
  }
}

function stringAt(strings: readonly string[], index: number): string {
  return itemAt(strings, index, "string");
}

function itemAt<T>(items: readonly T[], index: number, what: string): T {
  if (index >= items.length) throw new Invalid(`refers to ${what} ${index} of ${items.length}`);
  return items[index] as T;
}

/** Little-endian reads that never pass the end: past it, the message is invalid. */
class Reader {
  readonly view: DataView;
  readonly #data: Uint8Array;
  #offset = 0;

  constructor(data: Uint8Array) {
    this.#data = data;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  get left(): number {
    return this.#data.byteLength - this.#offset;
  }

  /** Moves past `bytes` and answers where they start. */
  skip(bytes: number): number {
    if (bytes > this.left) throw new Invalid("ends too early");
    const at = this.#offset;
    this.#offset += bytes;
    return at;
  }

  u8(): number {
    return this.view.getUint8(this.skip(1));
  }

  u16(): number {
    return this.view.getUint16(this.skip(2), true);
  }

  u32(): number {
    return this.view.getUint32(this.skip(4), true);
  }

  f64(): number {
    return this.view.getFloat64(this.skip(8), true);
  }

  /** A count of items of at least `bytes` each, which the bytes left must be able to hold. */
  count(bytes: number, what: string): number {
    const n = this.u32();
    if (n * bytes > this.left) throw new Invalid(`/${what}: ${n} do not fit in the message`);
    return n;
  }

  text(bytes: number): string {
    const at = this.skip(bytes);
    try {
      return utf8.decode(this.#data.subarray(at, at + bytes));
    } catch (err) {
      throw new Undecodable(`not UTF-8: ${String(err)}`);
    }
  }
}
