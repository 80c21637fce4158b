/**
 * An agent request's points as columns, the shape a version 4 message has: each series once
 * (a metric without value and time), then per point the index of its series, its time and its
 * value. Converters write here instead of making a `Metric` per point, so a point costs four
 * array slots rather than an object, its JSON and its size measured one by one.
 */
import type { Metric } from "./metric-schema.ts";
import { seriesDigest, type PointIdentities } from "./series-identity.ts";
import { rfc3339FromNanos } from "./timestamp.ts";

/** What the points of a series share: a metric without value and timestamp, with a name. */
export interface SeriesMetric {
  readonly name: string;
  readonly tags?: Readonly<Record<string, string>>;
  /** A protocol's own fields (`influx`, …): JSON values. */
  readonly [field: string]: unknown;
}

/** A series of the request, as a version 4 message's series table writes it. */
export interface Series {
  readonly metric: SeriesMetric;
  /** Its JSON: what a metric of it is without `value` and `timestamp`. */
  readonly text: string;
  /** UTF-8 bytes of `text`. */
  readonly textBytes: number;
  /** Its part of its points' message ids (`seriesDigest`). */
  readonly digest: string;
}

export class SeriesColumns {
  readonly series: Series[] = [];
  /** Per point: the index of its series in `series`. */
  readonly seriesOf: number[] = [];
  /** Per point: its time in whole milliseconds since the epoch. */
  readonly ms: number[] = [];
  /**
   * Per point: nanoseconds past `ms` (0 to 999,999), its timestamp being the RFC 3339 text
   * `rfc3339FromNanos` writes; or -1, its timestamp being the number `ms`.
   */
  readonly ns: number[] = [];
  /** Per point: its value as JSON writes it (a finite number). */
  readonly values: string[] = [];
  readonly #indexes = new Map<string, number>();

  get points(): number {
    return this.seriesOf.length;
  }

  /**
   * The index of `metric`'s series, added when new. Series are one when their JSON is, as a
   * message's series table would make them one anyway.
   */
  seriesIndex(metric: SeriesMetric): number {
    const text = this.#json(metric);
    return this.#index(text, () => seriesWithText(metric, text));
  }

  /** The index of a series made before (`seriesOf`), added when new, as `seriesIndex` does. */
  indexOf(series: Series): number {
    return this.#index(series.text, () => series);
  }

  #index(text: string, make: () => Series): number {
    let index = this.#indexes.get(text);
    if (index === undefined) {
      index = this.series.length;
      this.series.push(make());
      this.#indexes.set(text, index);
    }
    return index;
  }

  /**
   * `JSON.stringify(metric)`, writing each object it holds (a tag set, a protocol's field) once
   * however many series share it: converters share one object among the series of a line or a
   * scope, and never change it once made. Metrics hold JSON values only.
   */
  #json(metric: SeriesMetric): string {
    let text = "";
    for (const key in metric) {
      const value = (metric as Readonly<Record<string, unknown>>)[key];
      if (value === undefined) continue;
      const part = `${JSON.stringify(key)}:${this.#valueJson(value)}`;
      text = text === "" ? part : `${text},${part}`;
    }
    return `{${text}}`;
  }

  readonly #objectJson = new WeakMap<object, string>();

  #valueJson(value: unknown): string {
    if (typeof value !== "object" || value === null) return JSON.stringify(value);
    let text = this.#objectJson.get(value);
    if (text === undefined) {
      text = JSON.stringify(value);
      this.#objectJson.set(value, text);
    }
    return text;
  }

  addPoint(series: number, ms: number, ns: number, value: string): void {
    this.seriesOf.push(series);
    this.ms.push(ms);
    this.ns.push(ns);
    this.values.push(value);
  }

  /** The points' identities, which their message ids are made of. */
  identities(): PointIdentities {
    const digests = this.series.map((series) => series.digest);
    return { digests, seriesOf: this.seriesOf, ms: this.ms, ns: this.ns };
  }

  /** The points as metrics (name, value, timestamp, then the series' other fields). */
  metrics(): Metric[] {
    return this.seriesOf.map((index, i) => {
      const { name, ...rest } = (this.series[index] as Series).metric;
      const ms = this.ms[i] as number;
      const ns = this.ns[i] as number;
      const timestamp = ns === -1 ? ms : rfc3339FromNanos(BigInt(ms) * 1_000_000n + BigInt(ns));
      return { name, value: Number(this.values[i]), timestamp, ...rest } as Metric;
    });
  }
}

/**
 * A series made outside any request's columns, to be kept for the requests that bring it again
 * (`SeriesColumns.indexOf`). Its metric, like every object it holds, is never changed.
 */
export function seriesOf(metric: SeriesMetric): Series {
  return seriesWithText(metric, JSON.stringify(metric));
}

/** `seriesOf`, for a caller that has the series' JSON already. */
export function seriesWithText(metric: SeriesMetric, text: string): Series {
  const digest = seriesDigest(metric.name, metric.tags);
  return { metric, text, textBytes: Buffer.byteLength(text), digest };
}
