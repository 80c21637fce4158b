import { QUERY_LIMITS } from "../shared/query-limits.ts";
import {
  QueryRefusal,
  type RangeQuery,
  type RangeSeries,
  type SeriesEntry,
  type SeriesQuery,
} from "../shared/query-protocol.ts";
import type { QueryStore } from "./query-store.ts";

/**
 * The series of a query, at most `QUERY_LIMITS.maxSeries`: more is a refusal naming the bound,
 * rather than an answer silently cut short.
 */
export async function answerSeries(store: QueryStore, q: SeriesQuery): Promise<SeriesEntry[]> {
  const series = await store.series(q, QUERY_LIMITS.maxSeries + 1);
  if (series.length > QUERY_LIMITS.maxSeries) throw tooManySeries();
  return series;
}

/**
 * The points of a range query, grouped by series. The database returns at most one row more
 * than an answer may hold, so a query over the bound costs the bound, not the whole range.
 */
export async function answerRange(store: QueryStore, q: RangeQuery): Promise<RangeSeries[]> {
  const rows = await store.range(q, QUERY_LIMITS.maxPoints + 1);
  if (rows.length > QUERY_LIMITS.maxPoints) {
    throw new QueryRefusal(
      "query_too_large",
      `The answer would hold more than the limit of ${QUERY_LIMITS.maxPoints} points; use a larger step, a shorter range or tag.<key>=<value> filters.`,
    );
  }
  // Rows come ordered by series: a new series starts where the tags change.
  const series: RangeSeries[] = [];
  let last: { key: string; points: [number, number][] } | undefined;
  for (const row of rows) {
    const key = JSON.stringify(row.tags);
    if (last?.key !== key) {
      last = { key, points: [] };
      series.push({ name: q.name, tags: row.tags, points: last.points });
      if (series.length > QUERY_LIMITS.maxSeries) throw tooManySeries();
    }
    last.points.push([row.t, row.v]);
  }
  return series;
}

function tooManySeries(): QueryRefusal {
  return new QueryRefusal(
    "query_too_large",
    `More than the limit of ${QUERY_LIMITS.maxSeries} series match; narrow the query with name or tag.<key>=<value> filters.`,
  );
}
