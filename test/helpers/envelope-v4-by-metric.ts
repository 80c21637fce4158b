/**
 * Version 4 messages made from metrics, as the edge made them before its converters wrote
 * columns: the reference the columns' encoder (`encodeColumnsV4`) is checked against, and how
 * tests and benches make version 4 messages of metrics already made, whatever form their times
 * take (an RFC 3339 text of another form than `rfc3339FromNanos` writes goes into the series).
 */
import type { Steps } from "../../shared/cooperative.ts";
import type { EncodedMessage } from "../../shared/envelope-encoder.ts";
import { EMPTY, type Columns } from "../../shared/envelope-v4-encoder.ts";
import { REQUEST_LIMITS } from "../../shared/limits.ts";
import type { Metric } from "../../shared/metric-schema.ts";
import { pointIdentitiesOf, seriesMessageId } from "../../shared/series-identity.ts";
import { canonicalTimeMs } from "../../shared/timestamp.ts";

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
  const identities = yield* pointIdentitiesOf(metrics, receivedAt);
  // Every series id has one length: the header's size does not depend on which it is.
  const fixedBytes = Buffer.byteLength(
    messageText(seriesMessageId(identities), receivedAt, [], EMPTY),
  );
  const json = new JsonPieces();
  const messages: EncodedMessage[] = [];
  const finish = (table: SeriesTable, start: number, end: number) => {
    const id = seriesMessageId(identities, start, end);
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

/** A version 4 message's text, joined as one string: what `messageBytes` writes in pieces. */
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
