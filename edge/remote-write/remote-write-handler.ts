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
import { traceHeaders } from "../http/trace-context.ts";
import { readRawBody } from "../http/read-body.ts";
import { pointCountOf, pointsOfWriteRequest, writeRequestOf } from "./remote-write.ts";
import { decodeSnappyBlock } from "./snappy-block.ts";
import { readWriteRequest } from "./write-request-reader.ts";
import { agentOptions, type ServiceContext } from "../http/service-context.ts";

/**
 * The largest Snappy block whose contents can fit the decompressed limit: Snappy's worst case
 * for data that does not compress is 32 + n + n/6 bytes.
 */
const MAX_BLOCK_BYTES = 32 + REQUEST_LIMITS.bodyBytes + Math.ceil(REQUEST_LIMITS.bodyBytes / 6);
const WRITE_REQUEST = "prometheus.WriteRequest";

/**
 * `POST /api/v1/write`: Prometheus remote write 1.0. Each sample becomes a metric, published
 * keyed by series and timestamp, so that a batch Prometheus sends again adds nothing; 204 once
 * JetStream acknowledged them all. Every refusal of bad input is a 4xx, which Prometheus does
 * not retry; a 5xx (with Retry-After) only when a retry can succeed.
 */
export function createRemoteWriteHandler(
  options: AgentHandlerOptions & FutureTimestampOption,
): Handler {
  const now = options.now ?? Date.now;
  const maxFutureMs = options.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS;

  async function write(req: Request, requestId: string): Promise<Response> {
    requirePost(req);
    const refusal = options.authenticate(req);
    if (refusal) throw refusal;
    checkProtocolHeaders(req.headers);
    const receivedAt = now();
    const body = await readRawBody(req, MAX_BLOCK_BYTES);
    const decoded = decodeSnappyBlock(body, REQUEST_LIMITS.bodyBytes);
    const bodyBytes = decoded.byteLength;
    const { points, columns, skipped } = await computeInTurn(bodyBytes, async () => {
      // Read by hand when it holds only labels and samples; else (metadata, histograms,
      // exemplars, anything malformed) by protobuf-es, which gives every answer.
      const request =
        (await runInSlices(readWriteRequest(decoded))) ??
        (await runInSlices(writeRequestOf(decoded)));
      const points = pointCountOf(request);
      if (points > REQUEST_LIMITS.metricsPerRequest) throw tooManyPoints(points);
      const budget = new ExpansionBudget(bodyBytes);
      return {
        points,
        ...(await runInSlices(pointsOfWriteRequest(request, budget, { receivedAt, maxFutureMs }))),
      };
    });
    const receipt = await publishColumns(options.publisher, {
      subject: options.subject,
      columns,
      receivedAt,
      bodyBytes,
      headers: traceHeaders(req),
    });
    // Info, unlike the JSON API's debug: a batch is worth a line, and it counts what was skipped.
    options.logger.info(
      {
        requestId,
        points,
        metrics: columns.points,
        messages: receipt.messages,
        duplicates: receipt.duplicates,
        skipped,
      },
      "accepted",
    );
    return new Response(null, { status: 204, headers: { "x-request-id": requestId } });
  }

  return answerRequests(options.logger, write);
}

/**
 * What remote write 1.0 says a sender sends: `Content-Type: application/x-protobuf` (a `proto`
 * parameter, if any, naming prometheus.WriteRequest: remote write 2.0's messages are refused with
 * 415, so that its senders can fall back to 1.0), `Content-Encoding: snappy`, and, if it says,
 * `X-Prometheus-Remote-Write-Version: 0.1.x`.
 */
function checkProtocolHeaders(headers: Headers): void {
  const [mediaType = "", ...parameters] = (headers.get("content-type") ?? "").split(";");
  const type = mediaType.trim().toLowerCase();
  if (type !== "application/x-protobuf") {
    throw new ApiError(
      "unsupported_media_type",
      `Content-Type '${type.slice(0, 64)}' is not supported; remote write sends application/x-protobuf.`,
    );
  }
  for (const parameter of parameters) {
    const [key = "", value = ""] = parameter.split("=");
    const message = value.trim().replace(/^"(.*)"$/, "$1");
    if (key.trim().toLowerCase() === "proto" && message !== WRITE_REQUEST) {
      throw new ApiError(
        "unsupported_media_type",
        `The message '${message.slice(0, 64)}' is not supported; this endpoint takes remote write 1.0 (${WRITE_REQUEST}).`,
      );
    }
  }
  const encoding = (headers.get("content-encoding") ?? "").trim().toLowerCase();
  if (encoding !== "snappy") {
    throw new ApiError(
      "unsupported_encoding",
      `Content-Encoding '${encoding.slice(0, 64)}' is not supported; remote write sends snappy (the block format).`,
    );
  }
  const version = headers.get("x-prometheus-remote-write-version")?.trim();
  if (version !== undefined && !/^0\.1(\.\d+)?$/.test(version)) {
    throw new ApiError(
      "unsupported_media_type",
      `X-Prometheus-Remote-Write-Version '${version.slice(0, 32)}' is not supported; this endpoint speaks remote write 1.0 (0.1.0).`,
    );
  }
}

/** The Prometheus remote-write handler as every host makes it, from the service's context. */
export function remoteWriteHandlerOf(context: ServiceContext): Handler {
  return createRemoteWriteHandler(agentOptions(context, "prometheus"));
}
