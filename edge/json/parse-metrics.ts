import type { Steps } from "../../shared/cooperative.ts";
import { ApiError, invalidMetrics, type ErrorDetail } from "../http/errors.ts";
import { futureTimestampDetail, type FutureBound } from "../publish/future-timestamps.ts";
import { REQUEST_LIMITS } from "../../shared/limits.ts";
import type { Metric } from "../../shared/metric-schema.ts";
import { toDetails } from "../publish/validation-details.ts";
import { validateJsonBody, validateMetric } from "../../shared/validators.ts";
import { dataInPieces } from "./data-in-pieces.ts";

export type JsonEncoding = "json" | "ndjson";

/**
 * The encoding of a JSON API body, as its Content-Type header names it: `application/json` or
 * `application/x-ndjson`, in any letter case, with at most a `charset=utf-8` parameter.
 * Anything else is a 415.
 */
export function jsonEncodingOf(contentType: string | null): JsonEncoding {
  const [essence = "", ...params] = (contentType ?? "")
    .split(";")
    .map((p) => p.trim().toLowerCase());
  const unsupported = () =>
    new ApiError(
      "unsupported_media_type",
      "Send Content-Type: application/json or application/x-ndjson (charset utf-8).",
    );
  for (const param of params) {
    const [key, value] = param.split("=").map((s) => s.trim().replace(/^"(.*)"$/, "$1"));
    if (key === "charset" && value !== "utf-8" && value !== "utf8") throw unsupported();
  }
  if (essence === "application/json") return "json";
  if (essence === "application/x-ndjson") return "ndjson";
  throw unsupported();
}

/**
 * Turns a body (its text in pieces: `textPieces`; a short one is one piece) into its metrics, all or nothing: any malformed line or invalid metric refuses
 * the whole request, with a detail for every bad metric and field. Validation pauses between
 * metrics (`Steps`), so a large batch can run in slices. With a `bound`, a timestamp past it
 * makes its metric invalid too.
 */
export function* parseMetrics(
  pieces: readonly string[],
  format: JsonEncoding,
  bound?: FutureBound,
): Steps<Metric[]> {
  const items = format === "json" ? itemsOfJson(pieces) : itemsOfNdjson(pieces);
  if (items.length === 0) throw new ApiError("empty_batch", "The request holds no metrics.");
  if (items.length > REQUEST_LIMITS.metricsPerRequest) throw tooMany();

  const details: ErrorDetail[] = [];
  for (const [index, item] of items.entries()) {
    if (!validateMetric(item)) details.push(...toDetails(index, validateMetric.errors ?? []));
    else if (bound !== undefined) {
      const detail = futureTimestampDetail(item, index, bound);
      if (detail !== undefined) details.push(detail);
    }
    yield;
  }
  if (details.length > 0) throw invalidMetrics(details);

  return items as Metric[];
}

function itemsOfJson(pieces: readonly string[]): unknown[] {
  // A large batch is parsed in pieces; anything else, malformed bodies included, whole.
  const body = (pieces.length > 1 ? dataInPieces(pieces) : undefined) ?? wholeBody(pieces);
  if (!validateJsonBody(body)) {
    throw new ApiError(
      "invalid_body",
      'The body must be {"data": Metric} or {"data": [Metric, ...]}.',
      { details: toDetails(0, validateJsonBody.errors ?? []) },
    );
  }
  return Array.isArray(body.data) ? body.data : [body.data];
}

function wholeBody(pieces: readonly string[]): unknown {
  const text = pieces.join("");
  if (text.trim() === "") throw new ApiError("empty_batch", "The body is empty.");
  return parseJson(text, () => "The body is not valid JSON");
}

/** One metric per line; a line may span two pieces. */
function itemsOfNdjson(pieces: readonly string[]): unknown[] {
  const items: unknown[] = [];
  let line = 0;
  const take = (text: string) => {
    line++;
    const content = text.trim();
    if (content === "") return;
    if (items.length === REQUEST_LIMITS.metricsPerRequest) throw tooMany();
    items.push(parseJson(content, () => `Line ${line} is not valid JSON`));
  };
  let carried = "";
  for (const piece of pieces) {
    const lines = piece.split("\n");
    lines[0] = carried + (lines[0] ?? "");
    // The text after the piece's last line end: the start of the next piece's first line.
    carried = lines.pop() ?? "";
    for (const text of lines) take(text);
  }
  take(carried);
  return items;
}

function parseJson(text: string, what: () => string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    // Only the position is repeated: the parser's own message quotes the body.
    const position = err instanceof SyntaxError ? /at position (\d+)/.exec(err.message)?.[1] : "";
    const reason = position ? ` (at position ${position})` : "";
    throw new ApiError("malformed_body", `${what()}${reason}.`, { cause: err });
  }
}

/**
 * The refusal of a request whose metric `index` is `bytes` as its own JSON, over the limit. The
 * ingest handler measures metrics as it writes their message (`encodeMessage`), not here.
 */
export function metricTooLarge(index: number, bytes: number): ApiError {
  return new ApiError(
    "metric_too_large",
    `Metric ${index} is ${bytes} bytes; the limit is ${REQUEST_LIMITS.metricBytes} bytes.`,
  );
}

function tooMany(): ApiError {
  const max = REQUEST_LIMITS.metricsPerRequest;
  return new ApiError(
    "too_many_metrics",
    `The request holds more than ${max} metrics; send at most ${max} per request.`,
  );
}
