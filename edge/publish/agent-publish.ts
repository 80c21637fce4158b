/**
 * What the agent protocols (InfluxDB line protocol, OTLP, Prometheus remote write) share once
 * their bodies are turned into metrics: the same schema and size limit as the JSON API, the
 * bound on what a request may become, and publishing keyed by series, so that an agent's
 * retried batch adds nothing.
 */
import type { Authenticator } from "../http/auth.ts";
import { computeInTurn, runInSlices } from "../../shared/cooperative.ts";
import type { EncodedMessage } from "../../shared/envelope-encoder.ts";
import { encodeColumnsV4 } from "../../shared/envelope-v4-encoder.ts";
import { ApiError, type ErrorDetail } from "../http/errors.ts";
import type { ExpansionBudget } from "./expansion-budget.ts";
import { futureTimeDetail, futureTimestampDetail, type FutureBound } from "./future-timestamps.ts";
import { withinBounds } from "../../shared/metric-bounds.ts";
import { REQUEST_LIMITS } from "../../shared/limits.ts";
import type { Logger } from "../../shared/logger.ts";
import type { Metric } from "../../shared/metric-schema.ts";
import type { Publisher } from "./publisher.ts";
import type { Series, SeriesColumns } from "../../shared/series-columns.ts";
import { isInRange } from "../../shared/timestamp.ts";
import { toDetails } from "./validation-details.ts";
import { validateMetric } from "../../shared/validators.ts";

/** The problems of one refused metric, by its position among the request's points. */
export interface RefusedMetric {
  readonly index: number;
  readonly details: readonly ErrorDetail[];
}

/**
 * Checks one metric a protocol's point became (its `index` among the request's points) as the
 * JSON API checks one: against the Metric schema and the per-metric size limit. Its size as
 * stored is spent from the request's `budget` first, so a request over its expansion bound is
 * refused (413) at the first metric past it, before the rest are made or checked. With a
 * `bound`, a timestamp past it refuses the metric too. A metric as our converters make it is
 * checked by its bounds alone (`withinBounds`); the schema sees only the rest, and names the
 * problems of any it refuses.
 */
export function checkMetric(
  candidate: unknown,
  index: number,
  budget: ExpansionBudget,
  bound?: FutureBound,
): { readonly metric: Metric } | { readonly refused: RefusedMetric } {
  const size = budget.spend(candidate);
  const bounded = withinBounds(candidate);
  if (bounded !== undefined) {
    if (size > REQUEST_LIMITS.metricBytes) return { refused: tooLarge(index, size) };
    const { timeMs } = bounded;
    const future =
      bound === undefined || timeMs === undefined
        ? undefined
        : futureTimeDetail(timeMs, index, bound);
    if (future !== undefined) return { refused: { index, details: [future] } };
    return { metric: candidate as Metric };
  }
  if (!validateMetric(candidate)) {
    return { refused: { index, details: toDetails(index, validateMetric.errors ?? []) } };
  }
  if (size > REQUEST_LIMITS.metricBytes) return { refused: tooLarge(index, size) };
  const future = bound === undefined ? undefined : futureTimestampDetail(candidate, index, bound);
  if (future !== undefined) return { refused: { index, details: [future] } };
  return { metric: candidate };
}

/** What the points of one series need checked, found once for the series (`checkSeries`). */
export interface SeriesCheck {
  /**
   * The series' metric is within bounds (`withinBounds`) with any finite value and any time in
   * range, so its points need only those checked; else each point goes to `checkMetric`.
   */
  readonly withinBounds: boolean;
  /** JSON bytes of a metric of the series but for its value's and its timestamp's. */
  readonly fixedBytes: number;
}

/** A timestamp as `rfc3339FromNanos` writes it: every such text has this length as JSON. */
const TEXT_TIME = "1970-01-01T00:00:00.000000000Z";
const TEXT_TIME_BYTES = TEXT_TIME.length + 2;

/** `{…,"value":0,"timestamp":"…"}` over the series' JSON `{…}`: what is added to its bytes. */
const SAMPLE_BYTES = ',"value":0,"timestamp":'.length + TEXT_TIME_BYTES;

/** A series made outside any request (`seriesOf`), and how its points are checked. */
export interface CheckedSeries {
  readonly series: Series;
  readonly check: SeriesCheck;
}

/** `series` with its check, as the converters keep a series across requests. */
export function checkedSeries(series: Series): CheckedSeries {
  return { series, check: checkSeries(series) };
}

/** How the points of `series` are checked (`checkPoint`). */
export function checkSeries(series: Series): SeriesCheck {
  // The series' metric as one of its points would make it, with one digit of value and a text
  // time: checked and measured once, the point's own parts then added.
  const sample = { ...series.metric, value: 0, timestamp: TEXT_TIME };
  return {
    withinBounds: withinBounds(sample) !== undefined,
    fixedBytes: series.textBytes + SAMPLE_BYTES - 1 - TEXT_TIME_BYTES,
  };
}

/**
 * Checks one point of a series (its `index` among the request's points) exactly as
 * `checkMetric` checks the metric it stands for — same budget spent, same refusals — but by its
 * own parts only when its series is within bounds: a finite value (`valueText` as JSON writes
 * it), a time in range (`ms`, and `ns` as `SeriesColumns` holds it), the per-metric size and
 * the future bound. Anything else
 * goes to `checkMetric` with the metric `candidate` makes. Undefined when the point is valid.
 */
export function checkPoint(
  series: SeriesCheck,
  value: number,
  valueText: string,
  ms: number,
  ns: number,
  index: number,
  budget: ExpansionBudget,
  bound: FutureBound | undefined,
  candidate: () => unknown,
): RefusedMetric | undefined {
  if (!series.withinBounds || !Number.isFinite(value) || !isInRange(ms)) {
    const checked = checkMetric(candidate(), index, budget, bound);
    return "refused" in checked ? checked.refused : undefined;
  }
  const timeBytes = ns === -1 ? digitsOf(ms) : TEXT_TIME_BYTES;
  const size = budget.spendBytes(series.fixedBytes + valueText.length + timeBytes);
  if (size > REQUEST_LIMITS.metricBytes) return tooLarge(index, size);
  const future = bound === undefined ? undefined : futureTimeDetail(ms, index, bound);
  return future === undefined ? undefined : { index, details: [future] };
}

/** The decimal digits of a time in range (`isInRange`), without writing it: 1 to 15. */
function digitsOf(ms: number): number {
  if (ms >= 1e12) return ms >= 1e14 ? 15 : ms >= 1e13 ? 14 : 13;
  return String(ms).length;
}

function tooLarge(index: number, size: number): RefusedMetric {
  const message = `is ${size} bytes as JSON; the limit is ${REQUEST_LIMITS.metricBytes}`;
  return { index, details: [{ index, path: "", message }] };
}

export interface SeriesReceipt {
  /** JetStream messages the metrics were published as. */
  readonly messages: number;
  /** Of those, the ones JetStream already held (an agent's retry inside the duplicate window). */
  readonly duplicates: number;
}

/**
 * What a message's headers may take of the broker's `max_payload`, which counts them with the
 * data: `Nats-Msg-Id`, `traceparent` and NATS's own framing.
 */
const HEADER_BYTES = 1024;

/**
 * Publishes a request's valid points, held as columns (`SeriesColumns`), keyed by series, and
 * resolves once JetStream acknowledged every message. The batch is one message when it fits the
 * broker's `max_payload` (envelope version 4: each series once, then the points as columns),
 * else several, published at once. If any of them fails the whole request fails (retryable),
 * and the agent's retry adds only what was missing: the same batch is cut into the same
 * messages with the same ids, which JetStream drops inside its duplicate window, and every
 * row's key is its series and timestamp. Encoding and hashing run in slices, in the request's
 * turn when it is large (`bodyBytes`, its decoded body's size: `computeInTurn`), so a large
 * batch holds up no other request.
 */
export async function publishColumns(
  publisher: Publisher,
  message: {
    readonly subject: string;
    readonly columns: SeriesColumns;
    readonly receivedAt: number;
    readonly bodyBytes: number;
    readonly headers?: Readonly<Record<string, string>>;
  },
): Promise<SeriesReceipt> {
  const { columns, receivedAt } = message;
  if (columns.points === 0) return { messages: 0, duplicates: 0 };
  const maxBytes = (await publisher.maxMessageBytes()) - HEADER_BYTES;
  const encoded = await computeInTurn(message.bodyBytes, () =>
    runInSlices(encodeColumnsV4(columns, receivedAt, maxBytes)),
  );
  return publishMessages(publisher, message, encoded);
}

/** Publishes a request's messages at once; resolves once JetStream acknowledged every one. */
async function publishMessages(
  publisher: Publisher,
  message: { readonly subject: string; readonly headers?: Readonly<Record<string, string>> },
  encoded: readonly EncodedMessage[],
): Promise<SeriesReceipt> {
  const receipts = await Promise.all(
    encoded.map(({ id, data }) =>
      publisher.publish({
        subject: message.subject,
        data,
        msgId: id,
        headers: message.headers ?? {},
      }),
    ),
  );
  return {
    messages: receipts.length,
    duplicates: receipts.filter((receipt) => receipt.duplicate).length,
  };
}

/** The refusal for a request holding more points than any request may. */
export function tooManyPoints(count: number): ApiError {
  const max = REQUEST_LIMITS.metricsPerRequest;
  return new ApiError(
    "too_many_metrics",
    `The request holds ${count} points; send at most ${max} per request.`,
  );
}

/** What every agent protocol's handler is made with (the JSON API's options, less CORS). */
export interface AgentHandlerOptions {
  readonly publisher: Publisher;
  readonly authenticate: Authenticator;
  /** The protocol's own subject (`agentSubject`); the stream must cover it. */
  readonly subject: string;
  readonly logger: Logger;
  /** The receive time; defaults to `Date.now`. */
  readonly now?: () => number;
}
