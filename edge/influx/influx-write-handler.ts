/**
 * `POST /api/v2/write?org=&bucket=&precision=`: InfluxDB v2's write API, so that Telegraf and
 * the influx client libraries can send here as they send to InfluxDB. Each field of each line
 * becomes one metric; the request is stored whole or refused whole, and answered as InfluxDB
 * answers (204; 400 naming the first bad line; 413; 503 with Retry-After).
 */
import { publishColumns, type AgentHandlerOptions } from "../publish/agent-publish.ts";
import { DEFAULT_MAX_FUTURE_MS, type FutureTimestampOption } from "../publish/future-timestamps.ts";
import type { KeyScheme } from "../http/auth.ts";
import { computeInTurn, runInSlices } from "../../shared/cooperative.ts";
import { ApiError } from "../http/errors.ts";
import { ExpansionBudget } from "../publish/expansion-budget.ts";
import { errorBody, errorHeaders, jsonResponse } from "../http/http-response.ts";
import {
  decodeUtf8,
  LineRefusal,
  pointsOfText,
  PRECISIONS,
  type Precision,
  type WriteTarget,
} from "./influx-metrics.ts";
import { answerRequests, requirePost, type Handler } from "../http/answer-requests.ts";
import { METRIC_BOUNDS, REQUEST_LIMITS } from "../../shared/limits.ts";
import { traceHeaders } from "../http/trace-context.ts";
import { readBodyBytes } from "../http/read-body.ts";
import { agentOptions, type ServiceContext } from "../http/service-context.ts";

/** InfluxDB's clients send `Authorization: Token <key>`; Bearer works here as everywhere. */
const KEY_SCHEMES: readonly KeyScheme[] = ["Token", "Bearer"];

/** InfluxDB's `code` for each status: its clients show it with the message. */
const INFLUX_CODES: Readonly<Record<number, string>> = {
  400: "invalid",
  401: "unauthorized",
  403: "forbidden",
  404: "not found",
  405: "method not allowed",
  413: "request too large",
  415: "unsupported media type",
  429: "too many requests",
  500: "internal error",
  503: "unavailable",
};

export function createInfluxWriteHandler(
  options: AgentHandlerOptions & FutureTimestampOption,
): Handler {
  const now = options.now ?? Date.now;
  const maxFutureMs = options.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS;

  async function write(req: Request, requestId: string): Promise<Response> {
    requirePost(req);
    const refusal = options.authenticate(req, KEY_SCHEMES);
    if (refusal) throw refusal;
    const target = writeTarget(new URL(req.url).searchParams);
    const receivedAt = now();
    const body = await readBodyBytes(req, REQUEST_LIMITS.bodyBytes);
    const bodyBytes = body.byteLength;
    const columns = await computeInTurn(bodyBytes, () => {
      const budget = new ExpansionBudget(bodyBytes);
      return runInSlices(pointsOfText(decodeUtf8(body), target, receivedAt, budget, maxFutureMs));
    });
    const receipt = await publishColumns(options.publisher, {
      subject: options.subject,
      columns,
      receivedAt,
      bodyBytes,
      headers: traceHeaders(req),
    });
    options.logger.info(
      { requestId, metrics: columns.points, bucket: target.bucket, ...receipt },
      "accepted",
    );
    return new Response(null, { status: 204, headers: { "x-request-id": requestId } });
  }

  return answerRequests(options.logger, write, (err, requestId) =>
    influxErrorResponse(err, requestId),
  );
}

/** The query parameters: `bucket` (required), `org` or `orgID`, `precision` (default ns). */
function writeTarget(params: URLSearchParams): WriteTarget {
  const precision = params.get("precision") ?? "ns";
  if (!Object.hasOwn(PRECISIONS, precision)) {
    throw new ApiError(
      "invalid_body",
      `precision must be ns, us, ms or s, not ${JSON.stringify(precision.slice(0, 16))}.`,
    );
  }
  const bucket = parameter(params, "bucket");
  if (bucket === undefined) {
    throw new ApiError(
      "invalid_body",
      "The query parameter bucket (the bucket to write to) is required.",
    );
  }
  // Telegraf sends `org=` when no organization is configured: empty means none.
  const org = parameter(params, "org") ?? parameter(params, "orgID");
  return { bucket, org, precision: precision as Precision };
}

/** A non-empty query parameter, bounded like a metric name; undefined when absent or empty. */
function parameter(params: URLSearchParams, name: string): string | undefined {
  const value = params.get(name) ?? "";
  if (value === "") return undefined;
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (value.length > METRIC_BOUNDS.nameLength || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new ApiError(
      "invalid_body",
      `The query parameter ${name} must be at most ${METRIC_BOUNDS.nameLength} characters without control characters.`,
    );
  }
  return value;
}

/**
 * The API's error body with InfluxDB's `code` and `message` in front (what its clients read),
 * `line` for a bad line and `maxLength` for a body over the limit (what Telegraf logs).
 */
function influxErrorResponse(err: ApiError, requestId: string): Response {
  const headers = errorHeaders(err, requestId);
  if (err.code === "unauthorized") {
    headers.set("www-authenticate", 'Token realm="metrics", Bearer realm="metrics"');
  }
  return jsonResponse(
    err.status,
    {
      code: INFLUX_CODES[err.status] ?? "internal error",
      message: err.message,
      ...(err instanceof LineRefusal ? { line: err.line } : {}),
      ...(err.code === "body_too_large" ? { maxLength: REQUEST_LIMITS.bodyBytes } : {}),
      ...errorBody(err, requestId),
    },
    headers,
  );
}

/** The InfluxDB write handler as every host makes it, from the service's context. */
export function influxWriteHandlerOf(context: ServiceContext): Handler {
  return createInfluxWriteHandler(agentOptions(context, "influx"));
}
