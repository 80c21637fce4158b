/**
 * Bounds on what one read (`GET /api/v1/series`, `GET /api/v1/query_range`) may ask for and
 * answer. The edge refuses a query over them before asking the workers; the workers check the
 * bounds that depend on what is stored (series and points found) and refuse as well. The table
 * in docs/query.md repeats these numbers.
 */
export const QUERY_LIMITS = {
  /** Series in one answer (of either endpoint). */
  maxSeries: 1000,
  /** Points in one answer, over all its series. */
  maxPoints: 20_000,
  /** Step buckets in the time range, (end - start) / step: the points one series may have. */
  maxPointsPerSeries: 11_000,
  /** The longest time range, end - start: 32 days. */
  maxRangeMs: 32 * 24 * 3600 * 1000,
  /** The shortest step: 1 s. */
  minStepMs: 1000,
  /** How long the edge waits for a worker's answer before answering 503. */
  timeoutMs: 5000,
} as const;
