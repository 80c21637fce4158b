/**
 * How an agent protocol checks the metrics its points became: as the JSON API checks a metric
 * (`checkMetrics`: the schema and the per-metric size), and then against the bound on future
 * timestamps. Each protocol then refuses what failed in its own way (the whole request, or
 * OTLP's partial success).
 */
import { checkMetrics, type CheckedMetrics } from "./agent-publish.ts";
import { futureTimestampDetail, type FutureBound } from "./future-timestamps.ts";
import type { Metric } from "./metric-schema.ts";

/** `checkMetrics`, then the bound on each valid metric's timestamp (none without a bound). */
export function checkMetricsWithin(
  candidates: readonly unknown[],
  bound: FutureBound | undefined,
): CheckedMetrics {
  const checked = checkMetrics(candidates);
  if (bound === undefined) return checked;
  const valid: Metric[] = [];
  const refused = [...checked.refused];
  // The index of each valid metric among the candidates: they are in order, less the refused.
  const refusedAt = new Set(checked.refused.map(({ index }) => index));
  let index = 0;
  for (const metric of checked.valid) {
    while (refusedAt.has(index)) index++;
    const detail = futureTimestampDetail(metric, index, bound);
    if (detail === undefined) valid.push(metric);
    else refused.push({ index, details: [detail] });
    index++;
  }
  refused.sort((a, b) => a.index - b.index);
  return { valid, refused };
}
