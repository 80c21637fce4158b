/**
 * The remote write conversion as it was before points went into columns: a `Metric` per
 * sample, each checked by `checkMetric`. Kept for tests only, as the reference the columnar
 * path (`pointsOfWriteRequest`) must agree with, refusal for refusal and, once encoded, byte
 * for byte.
 */
import { checkMetric } from "../../edge/publish/agent-publish.ts";
import type { FutureBound } from "../../edge/publish/future-timestamps.ts";
import type { Steps } from "../../shared/cooperative.ts";
import { invalidMetrics, type ErrorDetail } from "../../edge/http/errors.ts";
import type { ExpansionBudget } from "../../edge/publish/expansion-budget.ts";
import type { SkippedPoints } from "../../edge/remote-write/remote-write.ts";
import type { WriteRequest } from "../../shared/gen/proto/prometheus/remote_pb.js";
import type { TimeSeries } from "../../shared/gen/proto/prometheus/types_pb.js";
import type { Metric } from "../../shared/metric-schema.ts";

const STALE_NAN_BITS = 0x7ff0_0000_0000_0002n;
const QUIET_NAN_BIT = 0x0008_0000_0000_0000n;

/**
 * Turns every sample into a metric: `__name__` is its name, the other labels its tags, the
 * timestamp (milliseconds) and value as sent. All or nothing: if any series or sample is
 * invalid, the request is refused (400, as the specification asks), naming every problem by
 * `timeseries[i].samples[j]`; `index` in the details is the sample's position in the request.
 * The samples of a series share one tags object; a request whose metrics outgrow its `budget`
 * is refused (413) at the first sample past it.
 */
export function* metricsOfWriteRequestByMetric(
  request: WriteRequest,
  budget: ExpansionBudget,
  bound?: FutureBound,
): Steps<{ readonly metrics: readonly Metric[]; readonly skipped: SkippedPoints }> {
  const skipped: SkippedPoints = {
    staleMarkers: 0,
    nonFinite: 0,
    histograms: 0,
    exemplars: 0,
    metadata: request.metadata.length,
  };
  const metrics: Metric[] = [];
  const problems: ErrorDetail[] = [];
  let sampleIndex = 0;

  for (const [s, series] of request.timeseries.entries()) {
    skipped.histograms += series.histograms.length;
    skipped.exemplars += series.exemplars.length;
    const first = sampleIndex;
    sampleIndex += series.samples.length;
    if (series.samples.length === 0) continue;
    const labels = labelsOf(series);
    if (typeof labels === "string") {
      problems.push({ index: first, path: "", message: `timeseries[${s}]: ${labels}` });
      continue;
    }
    for (const [j, sample] of series.samples.entries()) {
      yield;
      if (!Number.isFinite(sample.value)) {
        if (isStaleMarker(sample.value)) skipped.staleMarkers += 1;
        else skipped.nonFinite += 1;
        continue;
      }
      const candidate: Record<string, unknown> = {
        name: labels.name,
        value: sample.value,
        // Beyond Number's exact range only when far outside 1970–9999, which the schema refuses.
        timestamp: Number(sample.timestamp),
      };
      if (labels.tags !== undefined) candidate["tags"] = labels.tags;
      const checked = checkMetric(candidate, first + j, budget, bound);
      if ("metric" in checked) {
        metrics.push(checked.metric);
        continue;
      }
      const where = `timeseries[${s}].samples[${j}]`;
      for (const detail of checked.refused.details) {
        problems.push({
          index: first + j,
          path: detail.path,
          message: `${where}: ${fieldOf(detail.path)} ${detail.message}`,
        });
      }
    }
  }
  if (problems.length > 0)
    throw invalidMetrics(
      problems.sort((a, b) => a.index - b.index),
      "sample",
    );
  return { metrics, skipped };
}

/**
 * The series' name and tags, or why it has none. As in Prometheus, a label with an empty value
 * is no label. Labels may come in any order (the order carries no meaning here); a name must
 * not repeat, and every label must have a name.
 */
function labelsOf(
  series: TimeSeries,
): { name: string; tags: Record<string, string> | undefined } | string {
  const seen = new Set<string>();
  let name: string | undefined;
  const tags: [string, string][] = [];
  for (const label of series.labels) {
    if (label.name === "") return "a label has an empty name";
    if (seen.has(label.name)) return `the label '${label.name.slice(0, 128)}' appears twice`;
    seen.add(label.name);
    if (label.value === "") continue;
    if (label.name === "__name__") name = label.value;
    else tags.push([label.name, label.value]);
  }
  if (name === undefined) return "the series has no __name__ label, which names the metric";
  // fromEntries defines own properties: a label named __proto__ is a tag like any other.
  return { name, tags: tags.length > 0 ? Object.fromEntries(tags) : undefined };
}

const float = new DataView(new ArrayBuffer(8));

function isStaleMarker(value: number): boolean {
  if (!Number.isNaN(value)) return false;
  float.setFloat64(0, value);
  return (float.getBigUint64(0) & ~QUIET_NAN_BIT) === STALE_NAN_BITS;
}

/** What a metric's JSON Pointer is in a sample's terms. */
function fieldOf(path: string): string {
  if (path === "/name") return "__name__";
  if (path === "/timestamp") return "the timestamp";
  if (path === "/tags") return "the labels";
  if (path.startsWith("/tags/")) {
    const label = path.slice(6).replaceAll("~1", "/").replaceAll("~0", "~");
    return `the label '${label.slice(0, 128)}'`;
  }
  return "the sample";
}
