import type { Steps } from "../../shared/cooperative.ts";
import { ApiError, invalidMetrics, type ErrorDetail } from "../http/errors.ts";
import { futureTimestampDetail, type FutureBound } from "../publish/future-timestamps.ts";
import { withinBounds } from "../../shared/metric-bounds.ts";
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
 * A body's metrics, and their JSON text as the body holds it: `texts` joined by commas are the
 * elements of a JSON array of `metrics` (each text one or more whole metrics). The JSON API
 * publishes that text, not the metrics written again.
 */
export interface ParsedMetrics {
  readonly metrics: Metric[];
  readonly texts: readonly string[];
}

/**
 * Turns a body (its text in pieces: `textPieces`; a short one is one piece) into its metrics,
 * all or nothing: any malformed line or invalid metric refuses the whole request, with a detail
 * for every bad metric and field, and a metric over 64 KiB as JSON refuses it too. Validation
 * pauses between metrics (`Steps`), so a large batch can run in slices. With a `bound`, a
 * timestamp past it makes its metric invalid too.
 */
export function* parseMetrics(
  pieces: readonly string[],
  format: JsonEncoding,
  bound?: FutureBound,
): Steps<ParsedMetrics> {
  const { items, texts } = format === "json" ? itemsOfJson(pieces) : itemsOfNdjson(pieces);
  if (items.length === 0) throw new ApiError("empty_batch", "The request holds no metrics.");
  if (items.length > REQUEST_LIMITS.metricsPerRequest) throw tooMany();

  const details: ErrorDetail[] = [];
  for (const [index, item] of items.entries()) {
    // The common metric is answered by its bounds; the schema decides the rest, naming faults.
    if (withinBounds(item, { keepTags: false }) === undefined && !validateMetric(item)) {
      details.push(...toDetails(index, validateMetric.errors ?? []));
    } else if (bound !== undefined) {
      // A valid metric: within bounds, or passed by the schema.
      const detail = futureTimestampDetail(item as Metric, index, bound);
      if (detail !== undefined) details.push(detail);
    }
    yield;
  }
  if (details.length > 0) throw invalidMetrics(details);
  const metrics = items as Metric[];
  for (const [index, metric] of metrics.entries()) {
    if (jsonBytesAtMost(metric) <= REQUEST_LIMITS.metricBytes) continue;
    const bytes = Buffer.byteLength(JSON.stringify(metric));
    if (bytes > REQUEST_LIMITS.metricBytes) throw metricTooLarge(index, bytes);
  }
  return { metrics, texts };
}

/** A body's items, unchecked, and their text (`ParsedMetrics`). */
interface Items {
  readonly items: unknown[];
  readonly texts: readonly string[];
}

function itemsOfJson(pieces: readonly string[]): Items {
  // A large batch is parsed in pieces; anything else, malformed bodies included, whole.
  const inPieces = pieces.length > 1 ? dataInPieces(pieces) : undefined;
  if (inPieces !== undefined) return { items: inPieces.data, texts: inPieces.runs };
  const text = pieces.join("");
  const { body, dataText } = bodyOfText(text);
  if (!validateJsonBody(body)) {
    throw new ApiError(
      "invalid_body",
      'The body must be {"data": Metric} or {"data": [Metric, ...]}.',
      { details: toDetails(0, validateJsonBody.errors ?? []) },
    );
  }
  if (!Array.isArray(body.data)) {
    return { items: [body.data], texts: [dataText ?? JSON.stringify(body.data)] };
  }
  const texts =
    dataText === undefined
      ? body.data.map((item) => JSON.stringify(item))
      : // The array's text, less its brackets: JSON.parse took it whole, so they are its first
        // and last characters but for whitespace.
        [dataText.slice(dataText.indexOf("[") + 1, dataText.lastIndexOf("]"))];
  return { items: body.data, texts };
}

/** What may come before the data's value; JSON's whitespace is these four characters alone. */
const DATA_OPENING = /^[ \t\n\r]*\{[ \t\n\r]*"data"[ \t\n\r]*:/;
/** What may come after it, from the object's closing brace. */
const DATA_CLOSING = /^\}[ \t\n\r]*$/;

/**
 * The body as `JSON.parse` gives it, and the text of its `data` value when the body is
 * exactly `{"data": value}` (but for whitespace): then only that value is parsed. A body of any
 * other form (another key, a key written with escapes, `data` twice) is parsed whole and has no
 * `dataText`; so is a malformed body, for the parser's own answer.
 */
function bodyOfText(text: string): { body: unknown; dataText?: string } {
  const opening = DATA_OPENING.exec(text);
  const closing = text.lastIndexOf("}");
  if (opening !== null && closing > opening[0].length) {
    if (DATA_CLOSING.test(text.slice(closing))) {
      const dataText = text.slice(opening[0].length, closing);
      try {
        return { body: { data: JSON.parse(dataText) as unknown }, dataText };
      } catch {
        // Not one JSON value: the whole body is parsed below, for its answer.
      }
    }
  }
  if (text.trim() === "") throw new ApiError("empty_batch", "The body is empty.");
  return { body: parseJson(text, () => "The body is not valid JSON") };
}

/** One metric per line; a line may span two pieces. */
function itemsOfNdjson(pieces: readonly string[]): Items {
  const items: unknown[] = [];
  const texts: string[] = [];
  let line = 0;
  const take = (text: string) => {
    line++;
    const content = text.trim();
    if (content === "") return;
    if (items.length === REQUEST_LIMITS.metricsPerRequest) throw tooMany();
    items.push(parseJson(content, () => `Line ${line} is not valid JSON`));
    texts.push(content);
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
  return { items, texts };
}

/**
 * What a metric of the known fields weighs as JSON besides its strings and tags: braces, keys
 * and two numbers of at most 24 characters each (69 bytes at most).
 */
const KNOWN_FIELDS_BYTES = 128;

/**
 * At most the bytes `JSON.stringify` writes for a metric, without writing it: a metric of the
 * known fields alone weighs at most 6 bytes a character of its strings (`\u001f`) and a few for
 * each field and tag; one with any other field is written, to be weighed exactly.
 */
function jsonBytesAtMost(metric: Metric): number {
  let chars = 0;
  let entries = 0;
  for (const key in metric) {
    if (key === "name" || key === "timestamp") {
      const text = metric[key];
      chars += typeof text === "string" ? text.length : 0;
    } else if (key === "tags") {
      const tags = metric.tags as Readonly<Record<string, string>>;
      for (const tag in tags) {
        chars += tag.length + (tags[tag] as string).length;
        entries++;
      }
    } else if (key !== "value") {
      return Infinity;
    }
  }
  return KNOWN_FIELDS_BYTES + 6 * chars + 6 * entries;
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

/** The refusal of a request whose metric `index` is `bytes` as its own JSON, over the limit. */
function metricTooLarge(index: number, bytes: number): ApiError {
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
