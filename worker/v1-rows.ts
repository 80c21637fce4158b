import type { Metric } from "../shared/metric-schema.ts";
import { seriesKey } from "../shared/series-identity.ts";
import { fieldsOf, type MetricRow } from "./metric-rows.ts";

/** A row of schema version 1's wide `metrics` table, as both stores read it back. */
export interface V1Row {
  readonly dedup_key: string;
  readonly name: string | null;
  readonly value: number;
  readonly time_ms: number;
  readonly received_ms: number;
  /** JSON text. */
  readonly tags: string;
  /** The metric as sent, JSON text. */
  readonly metric: string;
  readonly msg_id: string;
}

/**
 * A version 1 row as a sample of the current schema: the same series, time, value and fields.
 * Rows keyed by series (`s:…`) came from an agent protocol, whose series fields go to the series.
 */
export function storedRowOfV1(old: V1Row): MetricRow {
  const tags = JSON.parse(old.tags) as Record<string, string>;
  const metric = JSON.parse(old.metric) as Metric;
  const { attributes, extra } = fieldsOf(metric, old.dedup_key.startsWith("s:"));
  return {
    series: seriesKey(old.name, tags),
    name: old.name,
    value: old.value,
    timeMs: old.time_ms,
    receivedMs: old.received_ms,
    tags: old.tags,
    attributes,
    extra,
    msgId: old.msg_id,
  };
}
