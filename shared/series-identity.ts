import { createHash } from "node:crypto";
import type { Metric } from "./metric-schema.ts";
import { measurementTimeNs } from "./timestamp.ts";

/**
 * The identity of an agent protocol's metric: its series (name and tags, in any order) and its
 * timestamp to the nanosecond — what InfluxDB and Prometheus deduplicate by. Two metrics with
 * the same identity are the same point, even with different values: the first stored stays.
 *
 * The key is a digest, so that it fits a unique index whatever the tags hold.
 */
export function seriesRowKey(metric: Metric, receivedAtMs: number): string {
  const tags = Object.entries(metric.tags ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const time = measurementTimeNs(metric.timestamp, receivedAtMs);
  return `s:${digest(JSON.stringify([metric.name ?? null, tags, String(time)]))}`;
}

/**
 * The JetStream message id of a batch of agent metrics: a digest of its metrics' identities, in
 * order. An agent's retry of the same batch gets the same id, so within the stream's duplicate
 * window JetStream drops it instead of storing it twice; after the window, the rows' own keys
 * still keep it from adding anything.
 */
export function seriesMessageId(rowKeys: readonly string[]): string {
  return `s:${digest(rowKeys.join("\n"))}`;
}

function digest(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("base64url");
}
