import type { Aggregation, RangeSeries, Tags } from "../../shared/query-protocol.ts";

export interface Sample {
  readonly tags: Tags;
  readonly timeMs: number;
  readonly value: number;
}

/**
 * What `query_range` should answer, computed plainly in JavaScript: the samples in
 * [startMs, endMs] grouped by series and step bucket, each bucket's aggregate, series ordered
 * by their tags' JSON and points by time. The reference the SQL of every store is held to.
 */
export function referenceRange(
  name: string,
  samples: readonly Sample[],
  q: { startMs: number; endMs: number; stepMs: number; agg: Aggregation },
): RangeSeries[] {
  const bySeries = new Map<string, { tags: Tags; buckets: Map<number, Sample[]> }>();
  for (const s of samples) {
    if (s.timeMs < q.startMs || s.timeMs > q.endMs) continue;
    const key = JSON.stringify(sortedTags(s.tags));
    let series = bySeries.get(key);
    if (series === undefined) {
      series = { tags: s.tags, buckets: new Map() };
      bySeries.set(key, series);
    }
    const bucket = q.startMs + Math.floor((s.timeMs - q.startMs) / q.stepMs) * q.stepMs;
    series.buckets.set(bucket, [...(series.buckets.get(bucket) ?? []), s]);
  }
  return [...bySeries.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, { tags, buckets }]) => ({
      name,
      tags,
      points: [...buckets.entries()]
        .sort(([a], [b]) => a - b)
        .map(([t, inBucket]): [number, number] => [t, aggregate(q.agg, inBucket)]),
    }));
}

function aggregate(agg: Aggregation, samples: readonly Sample[]): number {
  const values = samples.map((s) => s.value);
  const sum = values.reduce((a, b) => a + b, 0);
  switch (agg) {
    case "avg":
      return sum / values.length;
    case "min":
      return Math.min(...values);
    case "max":
      return Math.max(...values);
    case "sum":
      return sum;
    case "count":
      return values.length;
    case "last":
      return samples.reduce((a, b) => (b.timeMs > a.timeMs ? b : a)).value;
  }
}

function sortedTags(tags: Tags): Tags {
  return Object.fromEntries(Object.entries(tags).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Series in a canonical order (by their tags' JSON, keys sorted), to compare answers. */
export function canonical(series: readonly RangeSeries[]): RangeSeries[] {
  return series
    .map((s) => ({ ...s, tags: sortedTags(s.tags) }))
    .sort((a, b) => {
      const x = JSON.stringify(a.tags);
      const y = JSON.stringify(b.tags);
      return x < y ? -1 : x > y ? 1 : 0;
    });
}
