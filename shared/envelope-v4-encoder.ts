/**
 * Writes an agent batch as version 4 messages (the shape: `EnvelopeV4` in
 * shared/envelope-schema.ts): each series once, as the JSON of a metric without its value and
 * time, then the points as four columns of numbers. No object is written per point; a tag set or
 * a field holding an object (`influx`) is made JSON once per object.
 */
import type { Steps } from "./cooperative.ts";
import type { EncodedMessage } from "./envelope-encoder.ts";
import { REQUEST_LIMITS } from "./limits.ts";
import type { Metric } from "./metric-schema.ts";
import { pointTimeNsText, type Series, type SeriesColumns } from "./series-columns.ts";
import { seriesMessageId, seriesPointIds } from "./series-identity.ts";
import { canonicalTimeMs } from "./timestamp.ts";

/**
 * The series-keyed messages of an agent's batch as version 4, in order, each at most
 * `maxBytes` (a metric that does not fit even alone goes alone, for the publisher to refuse)
 * and holding at most a request's metrics; ids as version 3 makes them, a digest of the
 * identities of the metrics each holds. For metrics already made (the benches' batches); the
 * edge writes its points from columns (`encodeColumnsV4`), to the same bytes.
 */
export function* encodeSeriesMessagesV4(
  metrics: readonly Metric[],
  receivedAt: number,
  maxBytes: number,
): Steps<EncodedMessage[]> {
  const pointIds = yield* seriesPointIds(metrics, receivedAt);
  // Every series id has one length: the header's size does not depend on which it is.
  const fixedBytes = Buffer.byteLength(messageText(seriesMessageId([]), receivedAt, [], EMPTY));
  const json = new JsonPieces();
  const messages: EncodedMessage[] = [];
  const finish = (table: SeriesTable, start: number, end: number) => {
    const id = seriesMessageId(pointIds.slice(start, end));
    const text = messageText(id, receivedAt, table.series, table.points);
    messages.push({ id, data: Buffer.from(text), metrics: end - start });
  };
  let table = new SeriesTable(json);
  let start = 0;
  for (let i = 0; i < metrics.length; i++) {
    const metric = metrics[i] as Metric;
    table.add(metric);
    const count = i + 1 - start;
    if (count > 1 && fixedBytes + table.bytes > maxBytes) {
      // The message ends before this metric: made again without it (once per cut), so that
      // its series table holds nothing of the metric that goes on in the next.
      const without = new SeriesTable(json);
      for (let j = start; j < i; j++) without.add(metrics[j] as Metric);
      finish(without, start, i);
      table = new SeriesTable(json);
      table.add(metric);
      start = i;
    }
    if (i + 1 - start === REQUEST_LIMITS.metricsPerRequest) {
      finish(table, start, i + 1);
      table = new SeriesTable(json);
      start = i + 1;
    }
    yield;
  }
  if (start < metrics.length) finish(table, start, metrics.length);
  return messages;
}

/**
 * The same messages as `encodeSeriesMessagesV4` makes of `columns.metrics()`, byte for byte and
 * with the same ids, written from the columns: each series' JSON and digest made once, and per
 * point only its four numbers' text.
 */
export function* encodeColumnsV4(
  columns: SeriesColumns,
  receivedAt: number,
  maxBytes: number,
): Steps<EncodedMessage[]> {
  const digests = columns.digests();
  const points = columns.points;
  const pointIds: string[] = new Array<string>(points);
  for (let i = 0; i < points; i++) {
    const ms = columns.ms[i] as number;
    const ns = columns.ns[i] as number;
    pointIds[i] = `${digests[columns.seriesOf[i] as number] as string} ${pointTimeNsText(ms, ns)}`;
    if ((i & 255) === 255) yield;
  }
  const fixedBytes = Buffer.byteLength(messageText(seriesMessageId([]), receivedAt, [], EMPTY));
  const messages: EncodedMessage[] = [];
  const finish = (table: ColumnTable, start: number, end: number) => {
    const id = seriesMessageId(pointIds.slice(start, end));
    const text = messageText(id, receivedAt, table.series, table.points);
    messages.push({ id, data: Buffer.from(text), metrics: end - start });
  };
  let table = new ColumnTable(columns);
  let start = 0;
  for (let i = 0; i < points; i++) {
    table.add(i);
    if (i > start && fixedBytes + table.bytes > maxBytes) {
      // As `encodeSeriesMessagesV4` cuts: the message ends before this point.
      const without = new ColumnTable(columns);
      for (let j = start; j < i; j++) without.add(j);
      finish(without, start, i);
      table = new ColumnTable(columns);
      table.add(i);
      start = i;
    }
    if (i + 1 - start === REQUEST_LIMITS.metricsPerRequest) {
      finish(table, start, i + 1);
      table = new ColumnTable(columns);
      start = i + 1;
    }
    if ((i & 255) === 255) yield;
  }
  if (start < points) finish(table, start, points);
  return messages;
}

/**
 * One message's series and columns as they are filled from a request's columns: its series
 * numbered again from 0 in the order they first appear in it, as `SeriesTable` numbers them.
 */
class ColumnTable {
  readonly series: string[] = [];
  readonly points = {
    series: [] as string[],
    ms: [] as string[],
    ns: [] as string[],
    value: [] as string[],
  };
  readonly #columns: SeriesColumns;
  /** The message's index of each of the request's series (by its index), as text. */
  readonly #local: (string | undefined)[] = [];
  #seriesBytes = 0;
  #pointBytes = 0;
  // A line's fields share their time: its text is made once for all of them.
  #lastMs = Number.NaN;
  #lastMsText = "";
  #lastNs = Number.NaN;
  #lastNsText = "";

  constructor(columns: SeriesColumns) {
    this.#columns = columns;
  }

  get bytes(): number {
    const points = this.points.series.length;
    const commas = points === 0 ? 0 : 4 * (points - 1);
    const seriesCommas = this.series.length === 0 ? 0 : this.series.length - 1;
    return this.#seriesBytes + seriesCommas + this.#pointBytes + commas;
  }

  /** Adds the request's point `i`. */
  add(i: number): void {
    const columns = this.#columns;
    const series = columns.seriesOf[i] as number;
    let index = this.#local[series];
    if (index === undefined) {
      const { text, textBytes } = columns.series[series] as Series;
      index = String(this.series.length);
      this.series.push(text);
      this.#local[series] = index;
      this.#seriesBytes += textBytes;
    }
    const ms = columns.ms[i] as number;
    if (ms !== this.#lastMs) {
      this.#lastMs = ms;
      this.#lastMsText = String(ms);
    }
    const ns = columns.ns[i] as number;
    if (ns !== this.#lastNs) {
      this.#lastNs = ns;
      this.#lastNsText = String(ns);
    }
    const value = columns.values[i] as string;
    const { points } = this;
    points.series.push(index);
    points.ms.push(this.#lastMsText);
    points.ns.push(this.#lastNsText);
    points.value.push(value);
    this.#pointBytes +=
      index.length + this.#lastMsText.length + this.#lastNsText.length + value.length;
  }
}

/** The four columns, each number as JSON writes it. */
interface Columns {
  readonly series: readonly string[];
  readonly ms: readonly string[];
  readonly ns: readonly string[];
  readonly value: readonly string[];
}

const EMPTY: Columns = { series: [], ms: [], ns: [], value: [] };

function messageText(
  id: string,
  receivedAt: number,
  series: readonly string[],
  points: Columns,
): string {
  return (
    `{"v":4,"id":${JSON.stringify(id)},"receivedAt":${receivedAt},"key":"series",` +
    `"series":[${series.join(",")}],"points":{"series":[${points.series.join(",")}],` +
    `"ms":[${points.ms.join(",")}],"ns":[${points.ns.join(",")}],"value":[${points.value.join(",")}]}}`
  );
}

/** JSON text of what converters share between metrics, made once per object across messages. */
class JsonPieces {
  readonly #objects = new WeakMap<object, string>();
  #lastName: string | undefined;
  #lastNameText = "";

  name(name: string): string {
    if (name !== this.#lastName) {
      this.#lastName = name;
      this.#lastNameText = JSON.stringify(name);
    }
    return this.#lastNameText;
  }

  value(value: unknown): string {
    // The Metric schema lets through nothing but JSON values (undefined fields are skipped).
    if (typeof value !== "object" || value === null) return JSON.stringify(value);
    let text = this.#objects.get(value);
    if (text === undefined) {
      text = JSON.stringify(value);
      this.#objects.set(value, text);
    }
    return text;
  }
}

/** One message's series and columns as they are filled, and its size so far (header apart). */
class SeriesTable {
  readonly series: string[] = [];
  readonly points = {
    series: [] as string[],
    ms: [] as string[],
    ns: [] as string[],
    value: [] as string[],
  };
  readonly #json: JsonPieces;
  readonly #seriesIndex = new Map<string, string>();
  #seriesBytes = 0;
  #pointBytes = 0;
  /** The last text time read, and what it became: a line's fields share their time. */
  #lastText: string | undefined;
  #lastTime: Time = { ms: "0", ns: "0", series: "" };

  constructor(json: JsonPieces) {
    this.#json = json;
  }

  /** Bytes of the series and columns: what the message holds beyond an empty one. */
  get bytes(): number {
    const points = this.points.series.length;
    const commas = points === 0 ? 0 : 4 * (points - 1);
    const seriesCommas = this.series.length === 0 ? 0 : this.series.length - 1;
    return this.#seriesBytes + seriesCommas + this.#pointBytes + commas;
  }

  add(metric: Metric): void {
    let text = "";
    let value = "0";
    let time: Time | undefined;
    for (const field in metric) {
      const v = (metric as Record<string, unknown>)[field];
      if (v === undefined) continue;
      let part: string;
      switch (field) {
        case "value":
          // As JSON would: -0 is 0 (String writes it so too).
          value = String(metric.value);
          continue;
        case "timestamp":
          time = this.#time(v as string | number);
          continue;
        case "name":
          part = `"name":${this.#json.name(v as string)}`;
          break;
        default:
          part = `${JSON.stringify(field)}:${this.#json.value(v)}`;
      }
      text = text === "" ? part : `${text},${part}`;
    }
    if (time === undefined) throw new Error("envelope v4: a series-keyed metric needs a timestamp");
    if (time.series !== "") text = text === "" ? time.series : `${text},${time.series}`;
    text = `{${text}}`;
    let index = this.#seriesIndex.get(text);
    if (index === undefined) {
      index = String(this.series.length);
      this.series.push(text);
      this.#seriesIndex.set(text, index);
      this.#seriesBytes += Buffer.byteLength(text);
    }
    const { points } = this;
    points.series.push(index);
    points.ms.push(time.ms);
    points.ns.push(time.ns);
    points.value.push(value);
    this.#pointBytes += index.length + time.ms.length + time.ns.length + value.length;
  }

  #time(timestamp: string | number): Time {
    if (typeof timestamp === "number") return { ms: String(timestamp), ns: "-1", series: "" };
    if (timestamp === this.#lastText) return this.#lastTime;
    const ms = canonicalTimeMs(timestamp);
    const time =
      ms === undefined
        ? { ms: "0", ns: "0", series: `"timestamp":${JSON.stringify(timestamp)}` }
        : { ms: String(ms), ns: String(Number(timestamp.slice(23, 29))), series: "" };
    this.#lastText = timestamp;
    this.#lastTime = time;
    return time;
  }
}

/** A point's time as its columns write it, and what its series entry adds (a text time). */
interface Time {
  readonly ms: string;
  readonly ns: string;
  readonly series: string;
}
