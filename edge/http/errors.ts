import { REQUEST_LIMITS } from "../../shared/limits.ts";

/**
 * The one catalogue of error codes the HTTP API answers with. Each code has a fixed HTTP status,
 * and those a client should retry later carry the seconds sent as `Retry-After`. The error table
 * in docs/api.md is checked against this object by a test, so the two cannot drift.
 */
export const ERRORS = {
  malformed_body: { status: 400 },
  invalid_body: { status: 400 },
  invalid_metrics: { status: 400 },
  empty_batch: { status: 400 },
  invalid_idempotency_key: { status: 400 },
  invalid_query: { status: 400 },
  query_too_large: { status: 400 },
  unauthorized: { status: 401 },
  insufficient_scope: { status: 403 },
  host_not_allowed: { status: 403 },
  origin_not_allowed: { status: 403 },
  method_not_allowed: { status: 405 },
  not_found: { status: 404 },
  body_too_large: { status: 413 },
  metric_too_large: { status: 413 },
  too_many_metrics: { status: 413 },
  expansion_over_ratio: { status: 413 },
  expansion_over_limit: { status: 413 },
  unsupported_media_type: { status: 415 },
  unsupported_encoding: { status: 415 },
  nats_unavailable: { status: 503, retryAfter: 2 },
  publish_timeout: { status: 503, retryAfter: 2 },
  stream_full: { status: 503, retryAfter: 10 },
  storage_full: { status: 503, retryAfter: 30 },
  stream_unavailable: { status: 503, retryAfter: 5 },
  query_unavailable: { status: 503, retryAfter: 2 },
  auth_not_configured: { status: 503, retryAfter: 60 },
  configuration_error: { status: 500 },
  internal_error: { status: 500 },
} as const satisfies Record<string, { status: number; retryAfter?: number }>;

export type ErrorCode = keyof typeof ERRORS;

/** One invalid field of one metric, as listed in an `invalid_metrics` answer. */
export interface ErrorDetail {
  /**
   * Position of the metric in the request, from 0: the array index, or for NDJSON the position
   * among the non-blank lines (the same index the stored row's key uses).
   */
  index: number;
  /** JSON Pointer to the field inside that metric ("" for the metric itself). */
  path: string;
  message: string;
}

/** An error the API answers with as it is: its code, status and message are safe to show. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: readonly ErrorDetail[] | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: readonly ErrorDetail[] } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "ApiError";
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = options.details;
  }
}

/**
 * The refusal of a request with invalid metrics: how many are bad (as `what`: "metric",
 * "sample"), and the first problems as details.
 */
export function invalidMetrics(all: readonly ErrorDetail[], what = "metric"): ApiError {
  const bad = new Set(all.map((d) => d.index)).size;
  const shown = all.slice(0, REQUEST_LIMITS.errorDetails);
  const cut = all.length > shown.length ? ` (the first ${shown.length} problems are listed)` : "";
  return new ApiError(
    "invalid_metrics",
    `${bad} ${what}(s) are invalid${cut}; nothing was accepted.`,
    {
      details: shown,
    },
  );
}
