import type { RequestRecord } from "./load.ts";

/** A stored row, by the identity the load generator put in its tags. */
export interface StoredMetric {
  /** `tags.req`: the request it came from. */
  readonly req: string | undefined;
  /** `tags.i`: its position in that request. */
  readonly index: string | undefined;
}

/** What the database holds against what the clients were told. */
export interface Reconciliation {
  readonly requests: number;
  /** Requests that got a 2xx, possibly after retries. */
  readonly accepted: number;
  /** Requests whose every answer said nothing was published (4xx, `stream_full`…). */
  readonly refused: number;
  /** Requests with no 2xx and at least one timeout or `publish_timeout`: may or may not be stored. */
  readonly unknown: number;
  /** Attempts beyond each request's first. */
  readonly retries: number;
  readonly metricsSent: number;
  /** Metrics of the requests that got a 2xx: each must be stored exactly once. */
  readonly metricsAcknowledged: number;
  /** Rows of this run's metrics, copies included. */
  readonly stored: number;
  /** Acknowledged metrics with no row. Must be 0. */
  readonly lost: number;
  /** Rows beyond a metric's first. Must be 0. */
  readonly duplicated: number;
  /** Rows of refused requests. Must be 0. */
  readonly refusedStored: number;
  /** Metrics of unknown requests that are stored (each at most once): 0 or 1 copies are right. */
  readonly unknownMetrics: number;
  readonly unknownStored: number;
  /** Rows that belong to no request of the run. Must be 0. */
  readonly unexpected: number;
  /** A few ids of lost and duplicated metrics, for the failure message. */
  readonly examples: { lost: string[]; duplicated: string[]; refusedStored: string[] };
}

export function reconcile(
  records: readonly RequestRecord[],
  rows: readonly StoredMetric[],
): Reconciliation {
  const copies = new Map<string, number>();
  for (const row of rows) {
    const id = `${row.req ?? "?"}/${row.index ?? "?"}`;
    copies.set(id, (copies.get(id) ?? 0) + 1);
  }
  let accepted = 0;
  let refused = 0;
  let unknown = 0;
  let retries = 0;
  let metricsSent = 0;
  let metricsAcknowledged = 0;
  let stored = 0;
  let lost = 0;
  let duplicated = 0;
  let refusedStored = 0;
  let unknownMetrics = 0;
  let unknownStored = 0;
  const examples = {
    lost: [] as string[],
    duplicated: [] as string[],
    refusedStored: [] as string[],
  };
  const note = (list: string[], id: string) => {
    if (list.length < 5) list.push(id);
  };

  for (const r of records) {
    retries += Math.max(0, r.attempts.length - 1);
    metricsSent += r.metrics;
    if (r.final === "accepted") {
      accepted++;
      metricsAcknowledged += r.metrics;
    } else if (r.final === "refused") refused++;
    else {
      unknown++;
      unknownMetrics += r.metrics;
    }
    for (let i = 0; i < r.metrics; i++) {
      const id = `${r.req}/${i}`;
      const c = copies.get(id) ?? 0;
      copies.delete(id);
      stored += c;
      if (c > 1) {
        duplicated += c - 1;
        note(examples.duplicated, id);
      }
      if (r.final === "accepted" && c === 0) {
        lost++;
        note(examples.lost, id);
      }
      if (r.final === "refused" && c > 0) {
        refusedStored += c;
        note(examples.refusedStored, id);
      }
      if (r.final === "unknown" && c > 0) unknownStored++;
    }
  }
  let unexpected = 0;
  for (const c of copies.values()) unexpected += c;
  return {
    requests: records.length,
    accepted,
    refused,
    unknown,
    retries,
    metricsSent,
    metricsAcknowledged,
    stored,
    lost,
    duplicated,
    refusedStored,
    unknownMetrics,
    unknownStored,
    unexpected,
    examples,
  };
}
