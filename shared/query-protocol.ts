/**
 * What the edge and the workers say to each other to read metrics back: the NATS service every
 * worker registers, its endpoints' subjects, and their JSON requests and answers. The edge
 * builds a request from a URL's parameters (`edge/query/query-params.ts`); a worker checks it
 * again here before querying its store, since anyone allowed on those subjects may send one.
 */
import { QUERY_LIMITS } from "./query-limits.ts";

/** The service's name, as `nats micro ls` and the services API's ping, info and stats show it. */
export const QUERY_SERVICE_NAME = "metrics-query";
export const QUERY_SERVICE_VERSION = "1.0.0";

export const AGGREGATIONS = ["avg", "min", "max", "sum", "count", "last"] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

export type QueryEndpoint = "series" | "query_range";

/**
 * The subject of an endpoint: under `query.<stream>`, so that workers of different streams on
 * one NATS answer their own (and outside the stream's own `<prefix>.>` subjects).
 */
export function querySubject(streamName: string, endpoint: QueryEndpoint): string {
  return `${queryGroup(streamName)}.${endpoint}`;
}

export function queryGroup(streamName: string): string {
  return `query.${streamName}`;
}

export type Tags = Record<string, string>;

/** `series`: the series stored under a name (every name when absent) with these tags. */
export interface SeriesQuery {
  readonly name?: string;
  readonly tags: Tags;
}

/** `query_range`: one aggregate per step bucket of [startMs, endMs] for each matching series. */
export interface RangeQuery {
  readonly name: string;
  readonly tags: Tags;
  readonly startMs: number;
  readonly endMs: number;
  readonly stepMs: number;
  readonly agg: Aggregation;
}

export interface SeriesEntry {
  readonly name: string | null;
  readonly tags: Tags;
}

/** A series' points: `[bucket start in ms, aggregate]`, in time order, buckets with samples only. */
export interface RangeSeries {
  readonly name: string;
  readonly tags: Tags;
  readonly points: [number, number][];
}

/** The codes a worker refuses a query with; the edge answers them with the same codes. */
export type QueryRefusalCode = "invalid_query" | "query_too_large" | "internal_error";

export type QueryAnswer<T> =
  | { readonly status: "ok"; readonly series: T[] }
  | { readonly status: "error"; readonly error: { code: QueryRefusalCode; message: string } };

/** A query that cannot be answered as asked: its code and a message naming what is wrong. */
export class QueryRefusal extends Error {
  readonly code: QueryRefusalCode;
  constructor(code: QueryRefusalCode, message: string) {
    super(message);
    this.name = "QueryRefusal";
    this.code = code;
  }
}

/** The bucket count of a range: how many points one series may have. */
export function bucketCount(q: Pick<RangeQuery, "startMs" | "endMs" | "stepMs">): number {
  return Math.floor((q.endMs - q.startMs) / q.stepMs) + 1;
}

/**
 * Why a range query is out of bounds or inconsistent, as the message of its refusal, or
 * undefined when it is fine. Shared by the edge (before asking) and the workers (on receipt).
 */
export function rangeProblem(q: RangeQuery): QueryRefusal | undefined {
  const { startMs, endMs, stepMs } = q;
  if (endMs < startMs) return new QueryRefusal("invalid_query", "end is before start.");
  if (stepMs < QUERY_LIMITS.minStepMs) {
    return new QueryRefusal(
      "invalid_query",
      `step must be at least ${QUERY_LIMITS.minStepMs / 1000} s.`,
    );
  }
  if (endMs - startMs > QUERY_LIMITS.maxRangeMs) {
    return new QueryRefusal(
      "query_too_large",
      `The time range is longer than the limit of ${QUERY_LIMITS.maxRangeMs / 86_400_000} days.`,
    );
  }
  const buckets = bucketCount(q);
  if (buckets > QUERY_LIMITS.maxPointsPerSeries) {
    return new QueryRefusal(
      "query_too_large",
      `The range holds ${buckets} steps, over the limit of ${QUERY_LIMITS.maxPointsPerSeries} points per series; use a larger step or a shorter range.`,
    );
  }
  return undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function tagsOf(v: unknown): Tags | undefined {
  if (!isObject(v)) return undefined;
  const tags: Tags = {};
  for (const [key, value] of Object.entries(v)) {
    if (typeof value !== "string") return undefined;
    // Defined as own data: a key such as __proto__ is a tag like any other.
    Object.defineProperty(tags, key, { value, enumerable: true, writable: true });
  }
  return tags;
}

const isTime = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** A request's body as a series query, or the refusal naming what is wrong. */
export function readSeriesQuery(body: unknown): SeriesQuery | QueryRefusal {
  const tags = isObject(body) ? tagsOf(body["tags"]) : undefined;
  if (!isObject(body) || tags === undefined) {
    return new QueryRefusal("invalid_query", "A series query is {name?, tags}.");
  }
  const name = body["name"];
  if (name !== undefined && typeof name !== "string") {
    return new QueryRefusal("invalid_query", "name must be a string.");
  }
  return name === undefined ? { tags } : { name, tags };
}

/** A request's body as a range query within bounds, or the refusal naming what is wrong. */
export function readRangeQuery(body: unknown): RangeQuery | QueryRefusal {
  const tags = isObject(body) ? tagsOf(body["tags"]) : undefined;
  if (
    !isObject(body) ||
    tags === undefined ||
    typeof body["name"] !== "string" ||
    !isTime(body["startMs"]) ||
    !isTime(body["endMs"]) ||
    !isTime(body["stepMs"]) ||
    !(AGGREGATIONS as readonly unknown[]).includes(body["agg"])
  ) {
    return new QueryRefusal(
      "invalid_query",
      "A range query is {name, tags, startMs, endMs, stepMs, agg}.",
    );
  }
  const q: RangeQuery = {
    name: body["name"],
    tags,
    startMs: body["startMs"],
    endMs: body["endMs"],
    stepMs: body["stepMs"],
    agg: body["agg"] as Aggregation,
  };
  return rangeProblem(q) ?? q;
}
