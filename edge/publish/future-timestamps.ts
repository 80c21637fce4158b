/**
 * The bound on how far in the future a metric's timestamp may be. A sample's identity is its
 * series and timestamp and the first one stored stays, so without a bound whoever holds a key
 * could write a series' future samples first and make the real ones, when they come, be
 * answered 2xx and discarded. Prometheus-compatible stores refuse such samples the same way.
 */
import type { ErrorDetail } from "../http/errors.ts";
import type { Metric } from "../../shared/metric-schema.ts";
import { measurementTimeMs } from "../../shared/timestamp.ts";

/** `MAX_FUTURE_SECONDS`' default, in milliseconds: ten minutes. */
export const DEFAULT_MAX_FUTURE_MS = 600_000;

/** A handler's option: how far past its receive time a metric's timestamp may be. */
export interface FutureTimestampOption {
  /** Default `DEFAULT_MAX_FUTURE_MS`. */
  readonly maxFutureMs?: number;
}

/** The latest timestamp a request's metrics may carry: its receive time plus the bound. */
export interface FutureBound {
  readonly receivedAt: number;
  readonly maxFutureMs: number;
}

/**
 * The problem of a metric (already valid against the schema) whose timestamp is past the
 * bound, as a detail at its `/timestamp`; undefined when it is within it or has none.
 */
export function futureTimestampDetail(
  metric: Metric,
  index: number,
  bound: FutureBound,
): ErrorDetail | undefined {
  if (metric.timestamp === undefined) return undefined;
  return futureTimeDetail(measurementTimeMs(metric.timestamp, bound.receivedAt), index, bound);
}

/** The same problem for a metric measured at `timeMs`. */
export function futureTimeDetail(
  timeMs: number,
  index: number,
  bound: FutureBound,
): ErrorDetail | undefined {
  const ahead = timeMs - bound.receivedAt;
  if (ahead <= bound.maxFutureMs) return undefined;
  return {
    index,
    path: "/timestamp",
    message: `is ${Math.ceil(ahead / 1000)} s ahead of the time the request was received; at most ${bound.maxFutureMs / 1000} s is accepted`,
  };
}
