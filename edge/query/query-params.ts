/**
 * A read's URL parameters as the query sent to the workers. Every parameter is checked here, and
 * one the endpoint does not know is refused (a misspelt `tags.host` would otherwise widen the
 * query silently); the bounds are checked with the workers' own rules (`rangeProblem`).
 */
import { METRIC_BOUNDS } from "../../shared/limits.ts";
import {
  AGGREGATIONS,
  rangeProblem,
  type Aggregation,
  type RangeQuery,
  type SeriesQuery,
  type Tags,
} from "../../shared/query-protocol.ts";
import { isInRange, parseRfc3339 } from "../../shared/timestamp.ts";
import { ApiError } from "../http/errors.ts";

/** Defaults of `query_range`: the last hour, at 60 s steps, averaged. */
export const RANGE_DEFAULTS = { rangeMs: 3_600_000, stepSeconds: 60, agg: "avg" } as const;

const TAG_PREFIX = "tag.";

function invalid(message: string): ApiError {
  return new ApiError("invalid_query", message);
}

/** The `tag.<key>=<value>` filters, each key at most once; refuses any other unknown parameter. */
function readTags(params: URLSearchParams, known: readonly string[]): Tags {
  const tags: Tags = {};
  for (const [param, value] of params) {
    if (known.includes(param)) {
      if (params.getAll(param).length > 1) throw invalid(`${param} is given more than once.`);
      continue;
    }
    if (!param.startsWith(TAG_PREFIX)) {
      throw invalid(
        `Unknown parameter ${JSON.stringify(param.slice(0, 64))}; this endpoint takes ${known.join(", ")} and tag.<key>=<value>.`,
      );
    }
    const key = param.slice(TAG_PREFIX.length);
    if (key.length === 0 || key.length > METRIC_BOUNDS.tagKeyLength) {
      throw invalid(`A tag filter's key must be 1 to ${METRIC_BOUNDS.tagKeyLength} characters.`);
    }
    if (value.length > METRIC_BOUNDS.tagValueLength) {
      throw invalid(
        `A tag filter's value must be at most ${METRIC_BOUNDS.tagValueLength} characters.`,
      );
    }
    if (Object.hasOwn(tags, key)) throw invalid(`${param} is given more than once.`);
    Object.defineProperty(tags, key, { value, enumerable: true, writable: true });
  }
  if (Object.keys(tags).length > METRIC_BOUNDS.tagCount) {
    throw invalid(`At most ${METRIC_BOUNDS.tagCount} tag filters.`);
  }
  return tags;
}

function readName(params: URLSearchParams): string | undefined {
  const name = params.get("name");
  if (name === null) return undefined;
  if (name.length === 0 || name.length > METRIC_BOUNDS.nameLength) {
    throw invalid(`name must be 1 to ${METRIC_BOUNDS.nameLength} characters.`);
  }
  return name;
}

/** A time: integer milliseconds since the epoch, or an RFC 3339 date-time. */
function readTime(params: URLSearchParams, param: string): number | undefined {
  const text = params.get(param);
  if (text === null) return undefined;
  const ms = /^\d{1,16}$/.test(text) ? Number(text) : parseRfc3339(text);
  if (ms === undefined || !isInRange(ms)) {
    throw invalid(
      `${param} must be integer milliseconds since the epoch or an RFC 3339 date-time such as 2026-11-27T10:00:00Z.`,
    );
  }
  return ms;
}

/** `GET /api/v1/series?name=&tag.<key>=<value>` */
export function seriesQueryOf(params: URLSearchParams): SeriesQuery {
  const tags = readTags(params, ["name"]);
  const name = readName(params);
  return name === undefined ? { tags } : { name, tags };
}

/** `GET /api/v1/query_range?name=&start=&end=&step=&agg=&tag.<key>=<value>` */
export function rangeQueryOf(params: URLSearchParams, now: number): RangeQuery {
  const tags = readTags(params, ["name", "start", "end", "step", "agg"]);
  const name = readName(params);
  if (name === undefined) throw invalid("name is required: the metric to read.");
  const endMs = readTime(params, "end") ?? now;
  const startMs = readTime(params, "start") ?? Math.max(0, endMs - RANGE_DEFAULTS.rangeMs);
  const stepText = params.get("step");
  const stepSeconds = stepText === null ? RANGE_DEFAULTS.stepSeconds : Number(stepText);
  if (stepText !== null && (!/^\d+(\.\d{1,3})?$/.test(stepText) || !(stepSeconds > 0))) {
    throw invalid(
      "step must be a positive number of seconds, to the millisecond (e.g. 60 or 0.5).",
    );
  }
  const agg = params.get("agg") ?? RANGE_DEFAULTS.agg;
  if (!(AGGREGATIONS as readonly string[]).includes(agg)) {
    throw invalid(`agg must be one of ${AGGREGATIONS.join(", ")}.`);
  }
  const q: RangeQuery = {
    name,
    tags,
    startMs,
    endMs,
    stepMs: Math.round(stepSeconds * 1000),
    agg: agg as Aggregation,
  };
  const problem = rangeProblem(q);
  if (problem)
    throw new ApiError(
      problem.code === "invalid_query" ? "invalid_query" : "query_too_large",
      problem.message,
    );
  return q;
}
