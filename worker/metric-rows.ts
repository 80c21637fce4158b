import type { Envelope } from "../shared/envelope.ts";
import { seriesRowKey } from "../shared/series-identity.ts";
import { measurementTimeMs } from "../shared/timestamp.ts";

/** One row of the `metrics` table. */
export interface MetricRow {
  /**
   * The row's identity, unique in the table: `<message id>/<index in the message>` for the JSON
   * API, a digest of the series and timestamp for the agent protocols (`shared/series-identity.ts`).
   * A redelivered message, or an agent's retried batch, yields the same keys, so storing it again
   * adds nothing.
   */
  readonly dedupKey: string;
  readonly name: string | null;
  readonly value: number;
  /** When the metric was measured: its own timestamp, else when its request was received. */
  readonly timeMs: number;
  readonly receivedMs: number;
  /** The tags as a JSON object (`{}` when there were none). */
  readonly tags: string;
  /** The metric exactly as sent, as JSON. */
  readonly metric: string;
  readonly msgId: string;
}

export function rowsOfEnvelope(envelope: Envelope): MetricRow[] {
  return envelope.metrics.map((metric, index) => ({
    dedupKey:
      envelope.key === "series"
        ? seriesRowKey(metric, envelope.receivedAt)
        : `${envelope.id}/${index}`,
    name: metric.name ?? null,
    value: metric.value,
    timeMs: measurementTimeMs(metric.timestamp, envelope.receivedAt),
    receivedMs: envelope.receivedAt,
    tags: JSON.stringify(metric.tags ?? {}),
    metric: JSON.stringify(metric),
    msgId: envelope.id,
  }));
}
