import {
  publishColumns,
  tooManyPoints,
  type AgentHandlerOptions,
} from "../publish/agent-publish.ts";
import { computeInTurn, runInSlices } from "../../shared/cooperative.ts";
import { ApiError } from "../http/errors.ts";
import { DEFAULT_MAX_FUTURE_MS, type FutureTimestampOption } from "../publish/future-timestamps.ts";
import { ExpansionBudget } from "../publish/expansion-budget.ts";
import { answerRequests, requirePost, type Handler } from "../http/answer-requests.ts";
import { REQUEST_LIMITS } from "../../shared/limits.ts";
import {
  decodeRequest,
  otlpEncodingOf,
  exportResponse,
  PointsRefused,
  statusResponse,
  type OtlpEncoding,
} from "./otlp-http.ts";
import { countDataPoints, pointsOfRequest, refusalSummary } from "./otlp-metrics.ts";
import { traceHeaders } from "../http/trace-context.ts";
import { readBodyBytes } from "../http/read-body.ts";
import { agentOptions, type ServiceContext } from "../http/service-context.ts";

/**
 * `POST /v1/metrics` — OTLP/HTTP metrics, in binary protobuf or OTLP/JSON, gzip allowed. Every
 * data point becomes a metric keyed by its series and time, so an exporter's retry adds
 * nothing. The valid points are published, and the answer (200) counts the refused ones in
 * `partial_success`; a request none of whose points can be stored is a 400. Errors are a
 * `google.rpc.Status` in the request's encoding, with the status codes OTLP/HTTP gives them
 * (429, 502, 503 and 504 are the retryable ones).
 */
export function createOtlpMetricsHandler(
  options: AgentHandlerOptions & FutureTimestampOption,
): Handler {
  const now = options.now ?? Date.now;
  const maxFutureMs = options.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS;
  const log = options.logger;

  async function exportMetrics(
    req: Request,
    requestId: string,
    encoding: OtlpEncoding | undefined,
  ): Promise<Response> {
    requirePost(req);
    const refusal = options.authenticate(req);
    if (refusal) throw refusal;
    if (encoding === undefined) {
      throw new ApiError(
        "unsupported_media_type",
        "Send OTLP metrics as Content-Type application/x-protobuf or application/json.",
      );
    }
    const bytes = await readBodyBytes(req, REQUEST_LIMITS.bodyBytes);
    const receivedAt = now();
    const bodyBytes = bytes.byteLength;
    const { points, converted } = await computeInTurn(bodyBytes, async () => {
      const request = await runInSlices(decodeRequest(bytes, encoding));
      const points = countDataPoints(request);
      if (points > REQUEST_LIMITS.metricsPerRequest) throw tooManyPoints(points);
      const budget = new ExpansionBudget(bodyBytes);
      return {
        points,
        converted: await runInSlices(pointsOfRequest(request, budget, { receivedAt, maxFutureMs })),
      };
    });
    const summary = refusalSummary(converted);
    if (converted.rejected > 0 && converted.columns.points === 0) {
      throw new PointsRefused(`No data point can be stored. ${summary}`, converted.refusals);
    }
    const receipt = await publishColumns(options.publisher, {
      subject: options.subject,
      columns: converted.columns,
      receivedAt,
      bodyBytes,
      headers: traceHeaders(req),
    });
    log.info(
      {
        requestId,
        points,
        accepted: converted.columns.points,
        rejected: converted.rejected,
        unreadableMetrics: converted.unreadable,
        ...receipt,
      },
      "accepted",
    );
    // A message with nothing rejected is how OTLP passes a warning (here: metrics of no kind
    // this server reads).
    const partialSuccess =
      summary === ""
        ? undefined
        : { rejectedDataPoints: converted.rejected, errorMessage: summary };
    return exportResponse(encoding, partialSuccess, requestId);
  }

  // Every answer, an error too, is in the request's encoding; JSON when it has none of OTLP's.
  const encodingOfRequest = (req: Request) => otlpEncodingOf(req.headers.get("content-type"));
  return answerRequests(
    log,
    (req, requestId) => exportMetrics(req, requestId, encodingOfRequest(req)),
    (err, requestId, req) => statusResponse(err, encodingOfRequest(req) ?? "json", requestId),
  );
}

/** The OTLP metrics handler as every host makes it, from the service's context. */
export function otlpMetricsHandlerOf(context: ServiceContext): Handler {
  return createOtlpMetricsHandler(agentOptions(context, "otlp"));
}
