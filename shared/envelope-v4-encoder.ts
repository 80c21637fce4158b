/**
 * Writes an agent batch as version 4 messages (layout: shared/envelope-v4-layout.ts): each
 * distinct string, tag set and series once per message, then the points as columns. No JSON is
 * written per point; a field holding an object (`influx`) is written once per object.
 */
import type { Steps } from "./cooperative.ts";
import type { EncodedMessage } from "./envelope-encoder.ts";
import type { RowKey } from "./envelope-schema.ts";
import { FIELD, KEYS, SAMPLE_BYTES, TIME, V4 } from "./envelope-v4-layout.ts";
import { REQUEST_LIMITS } from "./limits.ts";
import type { Metric } from "./metric-schema.ts";
import { seriesMessageId, seriesPointIds } from "./series-identity.ts";
import { canonicalTimeMs } from "./timestamp.ts";

/**
 * The series-keyed messages of an agent's batch as version 4, in order, each at most
 * `maxBytes` (a metric that does not fit even alone goes alone, for the publisher to refuse)
 * and holding at most a request's metrics; ids as version 3 makes them, a digest of the
 * identities of the metrics each holds.
 */
export function* encodeSeriesMessagesV4(
  metrics: readonly Metric[],
  receivedAt: number,
  maxBytes: number,
): Steps<EncodedMessage[]> {
  const pointIds = yield* seriesPointIds(metrics, receivedAt);
  // Every series id has one length: the header's size does not depend on which it is.
  const headerBytes = headerSize(seriesMessageId([]));
  const messages: EncodedMessage[] = [];
  const finish = (table: SeriesTable, start: number, end: number) => {
    const id = seriesMessageId(pointIds.slice(start, end));
    messages.push({ id, data: table.write(id, receivedAt, "series"), metrics: end - start });
  };
  let table = new SeriesTable();
  let start = 0;
  for (let i = 0; i < metrics.length; i++) {
    const metric = metrics[i] as Metric;
    table.add(metric);
    const count = i + 1 - start;
    if (count > 1 && headerBytes + table.bytes > maxBytes) {
      // The message ends before this metric: made again without it (once per cut), so that
      // its tables hold nothing of the metric that goes on in the next.
      const without = new SeriesTable();
      for (let j = start; j < i; j++) without.add(metrics[j] as Metric);
      finish(without, start, i);
      table = new SeriesTable();
      table.add(metric);
      start = i;
    }
    if (i + 1 - start === REQUEST_LIMITS.metricsPerRequest) {
      finish(table, start, i + 1);
      table = new SeriesTable();
      start = i + 1;
    }
    yield;
  }
  if (start < metrics.length) finish(table, start, metrics.length);
  return messages;
}

/** One message's tables and columns as they are filled, and its size so far (header apart). */
class SeriesTable {
  readonly #strings: string[] = [];
  readonly #stringIndex = new Map<string, number>();
  #stringBytes = 0;
  /** Each tag set as string indices, key then value; by object, as converters share them. */
  readonly #tagSets: number[][] = [];
  readonly #tagSetIndex = new WeakMap<object, number>();
  /** A field value written as JSON: its text's string index, by object. */
  readonly #jsonIndex = new WeakMap<object, number>();
  readonly #series: SeriesEntry[] = [];
  readonly #seriesIndex = new Map<string, number>();
  #seriesBytes = 0;
  readonly #samples: number[] = [];
  readonly #kinds: number[] = [];
  readonly #times: number[] = [];
  readonly #details: number[] = [];
  readonly #values: number[] = [];
  #tagBytes = 0;
  /** The last text time read, and what it became: a line's fields share their time. */
  #lastText: string | undefined;
  #lastTime = { kind: 0, time: 0, detail: 0 };

  /** Bytes of everything but the header. */
  get bytes(): number {
    const strings = 8 + 4 * this.#strings.length + this.#stringBytes;
    const samples = 4 + SAMPLE_BYTES * this.#samples.length;
    return strings + 4 + this.#tagBytes + 4 + this.#seriesBytes + samples;
  }

  add(metric: Metric): void {
    let name = 0;
    let tags = 0;
    let value = 0;
    let time = NO_TIME;
    let fields: number[] | undefined;
    let key = "";
    for (const field in metric) {
      const v = (metric as Record<string, unknown>)[field];
      if (v === undefined) continue;
      switch (field) {
        case "value":
          // As JSON would: -0 is 0.
          value = (v as number) === 0 ? 0 : (v as number);
          break;
        case "name":
          name = this.#string(v as string) + 1;
          break;
        case "timestamp":
          time = this.#time(v as string | number);
          break;
        case "tags":
          tags = this.#tagSet(v as object) + 1;
          break;
        default: {
          const fieldName = this.#string(field);
          const [kind, payload] = this.#fieldValue(v);
          (fields ??= []).push(fieldName, kind, payload);
          key += `,${fieldName}:${kind}:${payload}`;
        }
      }
    }
    const seriesKey = `${name},${tags}${key}`;
    let series = this.#seriesIndex.get(seriesKey);
    if (series === undefined) {
      series = this.#series.length;
      this.#series.push({ name, tags, fields: fields ?? [] });
      this.#seriesIndex.set(seriesKey, series);
      this.#seriesBytes += seriesBytes(fields ?? []);
    }
    this.#samples.push(series);
    this.#kinds.push(time.kind);
    this.#times.push(time.time);
    this.#details.push(time.detail);
    this.#values.push(value);
  }

  /** The message: header, tables, columns. */
  write(id: string, receivedAt: number, key: RowKey): Uint8Array {
    const blob = this.#strings.join("");
    const out = new Writer(headerSize(id) + this.bytes);
    out.u8(V4);
    out.u8(KEYS.indexOf(key));
    out.u16(Buffer.byteLength(id));
    out.text(id);
    out.f64(receivedAt);
    out.u32(this.#strings.length);
    for (const s of this.#strings) out.u32(s.length);
    out.u32(this.#stringBytes);
    out.text(blob);
    out.u32(this.#tagSets.length);
    for (const set of this.#tagSets) {
      out.u8(set.length / 2);
      for (const index of set) out.u32(index);
    }
    out.u32(this.#series.length);
    for (const { name, tags, fields } of this.#series) {
      out.u32(name);
      out.u32(tags);
      out.u8(fields.length / 3);
      for (let f = 0; f < fields.length; f += 3) {
        const kind = fields[f + 1] as number;
        out.u32(fields[f] as number);
        out.u8(kind);
        if (kind === FIELD.number) out.f64(fields[f + 2] as number);
        else if (kind === FIELD.string || kind === FIELD.json) out.u32(fields[f + 2] as number);
      }
    }
    out.u32(this.#samples.length);
    for (const s of this.#samples) out.u16(s);
    for (const k of this.#kinds) out.u8(k);
    for (const t of this.#times) out.f64(t);
    for (const d of this.#details) out.u32(d);
    for (const v of this.#values) out.f64(v);
    return out.done();
  }

  #string(text: string): number {
    let index = this.#stringIndex.get(text);
    if (index === undefined) {
      index = this.#strings.length;
      this.#strings.push(text);
      this.#stringIndex.set(text, index);
      this.#stringBytes += Buffer.byteLength(text);
    }
    return index;
  }

  #tagSet(tags: object): number {
    let index = this.#tagSetIndex.get(tags);
    if (index === undefined) {
      const set: number[] = [];
      for (const [k, v] of Object.entries(tags as Record<string, string>)) {
        set.push(this.#string(k), this.#string(v));
      }
      index = this.#tagSets.length;
      this.#tagSets.push(set);
      this.#tagSetIndex.set(tags, index);
      this.#tagBytes += 1 + 4 * set.length;
    }
    return index;
  }

  /** A field's kind and payload as the layout writes them; a number as itself. */
  #fieldValue(value: unknown): [kind: number, payload: number] {
    switch (typeof value) {
      case "boolean":
        return [value ? FIELD.true : FIELD.false, 0];
      case "number":
        // As JSON would: a number that is not finite is null, -0 is 0.
        return Number.isFinite(value) ? [FIELD.number, value === 0 ? 0 : value] : [FIELD.null, 0];
      case "string":
        return [FIELD.string, this.#string(value)];
      case "object": {
        if (value === null) return [FIELD.null, 0];
        let index = this.#jsonIndex.get(value);
        if (index === undefined) {
          index = this.#string(JSON.stringify(value));
          this.#jsonIndex.set(value, index);
        }
        return [FIELD.json, index];
      }
      default:
        // Nothing else passes the Metric schema; JSON would write it as null.
        return [FIELD.null, 0];
    }
  }

  #time(timestamp: string | number): Time {
    if (typeof timestamp === "number") {
      return { kind: TIME.milliseconds, time: timestamp, detail: 0 };
    }
    if (timestamp === this.#lastText) return this.#lastTime;
    const ms = canonicalTimeMs(timestamp);
    const time =
      ms === undefined
        ? { kind: TIME.text, time: 0, detail: this.#string(timestamp) }
        : { kind: TIME.canonical, time: ms, detail: Number(timestamp.slice(23, 29)) };
    this.#lastText = timestamp;
    this.#lastTime = time;
    return time;
  }
}

interface SeriesEntry {
  readonly name: number;
  readonly tags: number;
  /** Per field: its name's string index, its kind, its payload. */
  readonly fields: readonly number[];
}

interface Time {
  readonly kind: number;
  readonly time: number;
  readonly detail: number;
}

const NO_TIME: Time = { kind: TIME.none, time: 0, detail: 0 };

function seriesBytes(fields: readonly number[]): number {
  let bytes = 4 + 4 + 1;
  for (let f = 1; f < fields.length; f += 3) {
    const kind = fields[f];
    bytes +=
      4 + 1 + (kind === FIELD.number ? 8 : kind === FIELD.string || kind === FIELD.json ? 4 : 0);
  }
  return bytes;
}

function headerSize(id: string): number {
  return 1 + 1 + 2 + Buffer.byteLength(id) + 8;
}

/** Little-endian writes into a buffer of known size. */
class Writer {
  readonly #buffer: Buffer;
  #offset = 0;

  constructor(size: number) {
    this.#buffer = Buffer.allocUnsafe(size);
  }

  u8(n: number): void {
    this.#offset = this.#buffer.writeUInt8(n, this.#offset);
  }

  u16(n: number): void {
    this.#offset = this.#buffer.writeUInt16LE(n, this.#offset);
  }

  u32(n: number): void {
    this.#offset = this.#buffer.writeUInt32LE(n, this.#offset);
  }

  f64(n: number): void {
    this.#offset = this.#buffer.writeDoubleLE(n, this.#offset);
  }

  text(s: string): void {
    this.#offset += this.#buffer.write(s, this.#offset, "utf8");
  }

  done(): Uint8Array {
    if (this.#offset !== this.#buffer.length) {
      throw new Error(`envelope v4: wrote ${this.#offset} of ${this.#buffer.length} bytes`);
    }
    return this.#buffer;
  }
}
