/**
 * Prometheus remote write 1.0: from a request body (a Snappy block holding a protobuf
 * `WriteRequest`) to the points the service stores, one per sample, in columns.
 */
import { checkedSeries, checkPoint, type CheckedSeries } from "../publish/agent-publish.ts";
import { BoundedMemo, MEMO_KEY_CHARS, objectMemo } from "../../shared/bounded-memo.ts";
import type { FutureBound } from "../publish/future-timestamps.ts";
import { runToEnd, type Steps } from "../../shared/cooperative.ts";
import { ApiError, invalidMetrics, type ErrorDetail } from "../http/errors.ts";
import type { ExpansionBudget } from "../publish/expansion-budget.ts";
import {
  WriteRequestSchema,
  type WriteRequest,
} from "../../shared/gen/proto/prometheus/remote_pb.js";
import { SeriesColumns, seriesOf } from "../../shared/series-columns.ts";
import { fromBinaryInSteps } from "../publish/protobuf-steps.ts";
import { decodeSnappyBlock } from "./snappy-block.ts";
import type { RemoteWriteBatch, RemoteWriteSeries } from "./write-request-reader.ts";

/**
 * The staleness marker: the NaN whose bits are 0x7ff0000000000002. Prometheus sends it as a
 * series' last sample when the series disappears (a target stops exposing it, or stops being
 * scraped); it marks an end, not a measurement. It is a signalling NaN, which the CPU may turn
 * into its quiet form (0x7ff8000000000002) when the number is moved about, so the quiet bit
 * is ignored when comparing (Prometheus's ordinary NaN is 0x7ff8000000000001).
 */
const STALE_NAN_BITS = 0x7ff0_0000_0000_0002n;
const QUIET_NAN_BIT = 0x0008_0000_0000_0000n;
/** protobuf-es's default: a WriteRequest nests three levels, so only bad input reaches it. */
const PROTOBUF_RECURSION_LIMIT = 100;

/** What a request held that does not become a metric, counted for the log. */
export interface SkippedPoints {
  /** Staleness markers: the end of a series, not a measurement. */
  staleMarkers: number;
  /** Other NaN or ±Inf values: a stored value is always a finite number. */
  nonFinite: number;
  /** Native histograms (not part of remote write 1.0; sent only with send_native_histograms). */
  histograms: number;
  exemplars: number;
  /** Metric metadata (type, help, unit), which Prometheus sends in requests of their own. */
  metadata: number;
}

export interface RemoteWritePoints {
  /** One valid point per stored sample, in the request's order; a series per label set. */
  readonly columns: SeriesColumns;
  readonly skipped: SkippedPoints;
}

/** Decompresses and decodes a remote write body, within `maxBytes` decompressed, at once. */
export function decodeWriteRequest(body: Uint8Array, maxBytes: number): WriteRequest {
  return runToEnd(writeRequestOf(decodeSnappyBlock(body, maxBytes)));
}

/** Decodes a decompressed remote write body, series by series (`Steps`). */
export function* writeRequestOf(bytes: Uint8Array): Steps<WriteRequest> {
  try {
    // Fields this definition does not know (remote write's later additions) are ignored.
    return yield* fromBinaryInSteps(WriteRequestSchema, bytes, {
      depth: 1,
      recursionLimit: PROTOBUF_RECURSION_LIMIT,
    });
  } catch (err) {
    const reason = err instanceof Error ? `: ${err.message.slice(0, 200)}` : "";
    throw new ApiError(
      "malformed_body",
      `The body is not a protobuf prometheus.WriteRequest${reason}.`,
      { cause: err },
    );
  }
}

/** The points of a request, as the per-request limit counts them: samples and histograms. */
export function pointCountOf(request: RemoteWriteBatch): number {
  let points = 0;
  for (const series of request.timeseries)
    points += series.samples.length + series.histograms.length;
  return points;
}

/**
 * Turns every sample into a point of its series: `__name__` is its name, the other labels its
 * tags, the timestamp (milliseconds) and value as sent. All or nothing: if any series or sample
 * is invalid, the request is refused (400, as the specification asks), naming every problem by
 * `timeseries[i].samples[j]`; `index` in the details is the sample's position in the request.
 * Each series is checked once and its samples by their bounds (`checkPoint`); a request whose
 * metrics outgrow its `budget` is refused (413) at the first sample past it.
 */
export function* pointsOfWriteRequest(
  request: RemoteWriteBatch,
  budget: ExpansionBudget,
  bound?: FutureBound,
): Steps<RemoteWritePoints> {
  const skipped: SkippedPoints = {
    staleMarkers: 0,
    nonFinite: 0,
    histograms: 0,
    exemplars: 0,
    metadata: request.metadata.length,
  };
  const columns = new SeriesColumns();
  const problems: ErrorDetail[] = [];
  let sampleIndex = 0;

  const { timeseries } = request;
  for (let s = 0; s < timeseries.length; s++) {
    const series = timeseries[s] as RemoteWriteSeries;
    skipped.histograms += series.histograms.length;
    skipped.exemplars += series.exemplars.length;
    const { samples } = series;
    const first = sampleIndex;
    sampleIndex += samples.length;
    if (samples.length === 0) continue;
    const known = knownLabelsOf(series.labels);
    if (typeof known === "string") {
      problems.push({ index: first, path: "", message: `timeseries[${s}]: ${known}` });
      continue;
    }
    const { labels, check } = known;
    const id = columns.indexOf(known.series);
    yield;
    for (let j = 0; j < samples.length; j++) {
      const sample = samples[j] as RemoteWriteSeries["samples"][number];
      const value = sample.value;
      if (!Number.isFinite(value)) {
        if (isStaleMarker(value)) skipped.staleMarkers += 1;
        else skipped.nonFinite += 1;
        continue;
      }
      // Beyond Number's exact range only when far outside 1970–9999, which the schema refuses.
      const ms = Number(sample.timestamp);
      const valueText = String(value);
      const refused = checkPoint(check, value, valueText, ms, -1, first + j, budget, bound, () =>
        metricOf(labels, value, ms),
      );
      if (refused === undefined) {
        columns.addPoint(id, ms, -1, valueText);
        if ((j & 255) === 255) yield;
        continue;
      }
      const where = `timeseries[${s}].samples[${j}]`;
      for (const detail of refused.details) {
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
  return { columns, skipped };
}

/** The metric a sample stands for, for the schema to check when bounds alone cannot. */
function metricOf(labels: Labels, value: number, timestamp: number): Record<string, unknown> {
  const metric: Record<string, unknown> = { name: labels.name, value, timestamp };
  if (labels.tags !== undefined) metric["tags"] = labels.tags;
  return metric;
}

/** A label set's series and how its points are checked, or why it is not a series. */
interface KnownLabels extends CheckedSeries {
  readonly labels: Labels;
}

/**
 * Label sets worked out already, by `labelsKey`. Prometheus sends the same series request after
 * request, and most requests hold each series once or a few times: its tags, its JSON, its
 * checks and its digest are made once, not once per request.
 */
const knownLabels = new BoundedMemo<KnownLabels | string>(20_000);

/**
 * The same, by label list: the hand-written reader gives one list to every series whose labels
 * are the same bytes (write-request-reader.ts), so a series seen before is found without
 * making its key. Held as long as the reader keeps the list.
 */
const knownLabelsOf = objectMemo(knownByKey);

function knownByKey(list: RemoteWriteSeries["labels"]): KnownLabels | string {
  const make = () => {
    const labels = labelsOf(list);
    if (typeof labels === "string") return labels;
    return { labels, ...checkedSeries(seriesOf(labels)) };
  };
  let chars = 0;
  for (const { name, value } of list) chars += name.length + value.length;
  return chars > MEMO_KEY_CHARS ? make() : knownLabels.get(labelsKey(list), make);
}

/** The labels as they came, in order, each part preceded by its length: one text per list. */
function labelsKey(labels: RemoteWriteSeries["labels"]): string {
  let key = "";
  for (const { name, value } of labels) key += `${name.length}:${name}${value.length}:${value}`;
  return key;
}

/** A series' name and tags: a type, not an interface, to be a `SeriesMetric`. */
type Labels = { readonly name: string; readonly tags?: Record<string, string> };

/**
 * The series' name and tags, or why it has none. As in Prometheus, a label with an empty value
 * is no label. Labels may come in any order (the order carries no meaning here); a name must
 * not repeat, and every label must have a name.
 */
function labelsOf(list: RemoteWriteSeries["labels"]): Labels | string {
  const seen = new Set<string>();
  let name: string | undefined;
  const tags: [string, string][] = [];
  for (const label of list) {
    if (label.name === "") return "a label has an empty name";
    if (seen.has(label.name)) return `the label '${label.name.slice(0, 128)}' appears twice`;
    seen.add(label.name);
    if (label.value === "") continue;
    if (label.name === "__name__") name = label.value;
    else tags.push([label.name, label.value]);
  }
  if (name === undefined) return "the series has no __name__ label, which names the metric";
  // fromEntries defines own properties: a label named __proto__ is a tag like any other.
  return tags.length > 0 ? { name, tags: Object.fromEntries(tags) } : { name };
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
