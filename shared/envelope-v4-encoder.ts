/**
 * Writes an agent batch as version 4 messages (the shape: `EnvelopeV4` in
 * shared/envelope-schema.ts): each series once, as the JSON of a metric without its value and
 * time, then the points as four columns of numbers, from the points a converter wrote into
 * columns (shared/series-columns.ts). No object is written per point.
 */
import type { Steps } from "./cooperative.ts";
import type { EncodedMessage } from "./envelope-encoder.ts";
import { REQUEST_LIMITS } from "./limits.ts";
import type { Series, SeriesColumns } from "./series-columns.ts";
import { seriesMessageId } from "./series-identity.ts";
import { TextBytes } from "./text-bytes.ts";

/**
 * The series-keyed messages of an agent's points (`SeriesColumns`) as version 4, in order, each
 * at most `maxBytes` (a point that does not fit even alone goes alone, for the publisher to
 * refuse) and holding at most a request's metrics; ids as version 3 makes them, a digest of the
 * identities of the points each holds. The same messages as
 * test/helpers/envelope-v4-by-metric.ts makes of `columns.metrics()`, byte for byte, written
 * from the columns: each series' JSON and digest made once, and per point only its four
 * numbers' text.
 */
export function* encodeColumnsV4(
  columns: SeriesColumns,
  receivedAt: number,
  maxBytes: number,
): Steps<EncodedMessage[]> {
  const points = columns.points;
  const msTexts = new Map<number, string>();
  const identities = columns.identities();
  const fixedBytes = messageBytes(seriesMessageId(identities), receivedAt, [], EMPTY).length;
  const messages: EncodedMessage[] = [];
  const finish = (table: ColumnTable, start: number, end: number) => {
    const id = seriesMessageId(identities, start, end);
    const data = messageBytes(id, receivedAt, table.series, table.points);
    messages.push({ id, data, metrics: end - start });
  };
  let table = new ColumnTable(columns, msTexts);
  let start = 0;
  for (let i = 0; i < points; i++) {
    table.add(i);
    if (i > start && fixedBytes + table.bytes > maxBytes) {
      // The message ends before this point: made again without it (once per cut), so that
      // its series table holds nothing of the point that goes on in the next.
      const without = new ColumnTable(columns, msTexts);
      for (let j = start; j < i; j++) without.add(j);
      finish(without, start, i);
      table = new ColumnTable(columns, msTexts);
      table.add(i);
      start = i;
    }
    if (i + 1 - start === REQUEST_LIMITS.metricsPerRequest) {
      finish(table, start, i + 1);
      table = new ColumnTable(columns, msTexts);
      start = i + 1;
    }
    if ((i & 255) === 255) yield;
  }
  if (start < points) finish(table, start, points);
  return messages;
}

/**
 * One message's series and columns as they are filled from a request's columns: its series
 * numbered again from 0 in the order they first appear in it.
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
  // Points share their nanoseconds (-1 for most): the last one's text is kept.
  #lastNs = Number.NaN;
  #lastNsText = "";

  /**
   * Each time's text, shared by the tables of a request: an agent's series share a few times
   * (a scrape's, an interval's), and writing a time of 13 digits cost more than the rest of
   * its point together (`String` of a number past 2^31; bench/notes.md).
   */
  readonly #msTexts: Map<number, string>;

  constructor(columns: SeriesColumns, msTexts: Map<number, string>) {
    this.#columns = columns;
    this.#msTexts = msTexts;
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
    let msText = this.#msTexts.get(ms);
    if (msText === undefined) {
      msText = String(ms);
      this.#msTexts.set(ms, msText);
    }
    const ns = columns.ns[i] as number;
    if (ns !== this.#lastNs) {
      this.#lastNs = ns;
      this.#lastNsText = String(ns);
    }
    const value = columns.values[i] as string;
    const { points } = this;
    points.series.push(index);
    points.ms.push(msText);
    points.ns.push(this.#lastNsText);
    points.value.push(value);
    this.#pointBytes += index.length + msText.length + this.#lastNsText.length + value.length;
  }
}

/** The four columns, each number as JSON writes it. */
export interface Columns {
  readonly series: readonly string[];
  readonly ms: readonly string[];
  readonly ns: readonly string[];
  readonly value: readonly string[];
}

/** No columns: a message's header alone, to measure it. */
export const EMPTY: Columns = { series: [], ms: [], ns: [], value: [] };

/** A version 4 message's bytes: its header, series table and columns, written in pieces. */
export function messageBytes(
  id: string,
  receivedAt: number,
  series: readonly string[],
  points: Columns,
): Buffer {
  return new TextBytes()
    .push(`{"v":4,"id":${JSON.stringify(id)},"receivedAt":${receivedAt},"key":"series",`)
    .push(`"series":[`)
    .pushJoined(series, ",")
    .push(`],"points":{"series":[`)
    .pushJoined(points.series, ",")
    .push(`],"ms":[`)
    .pushJoined(points.ms, ",")
    .push(`],"ns":[`)
    .pushJoined(points.ns, ",")
    .push(`],"value":[`)
    .pushJoined(points.value, ",")
    .push("]}}")
    .bytes();
}
