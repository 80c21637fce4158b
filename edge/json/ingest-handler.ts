import { randomUUID } from "node:crypto";
import { answerRequests, requirePost, type Handler } from "../http/answer-requests.ts";
import type { Authenticator } from "../http/auth.ts";
import { createCors, NO_CORS, type Cors } from "../http/cors.ts";
import { computeInTurn, runInSlices } from "../../shared/cooperative.ts";
import { encodeAsSent } from "../../shared/envelope-as-sent.ts";
import { ApiError } from "../http/errors.ts";
import { DEFAULT_MAX_FUTURE_MS, type FutureTimestampOption } from "../publish/future-timestamps.ts";
import { jsonResponse } from "../http/http-response.ts";
import { REQUEST_LIMITS } from "../../shared/limits.ts";
import type { Logger } from "../../shared/logger.ts";
import { jsonEncodingOf, parseMetrics } from "./parse-metrics.ts";
import type { Publisher } from "../publish/publisher.ts";
import type { ServiceContext } from "../http/service-context.ts";
import { readBodyText } from "../http/read-body.ts";
import { jsonSubject } from "../../shared/stream-setup.ts";
import { traceHeaders } from "../http/trace-context.ts";

export interface IngestHandlerOptions extends FutureTimestampOption {
  readonly publisher: Publisher;
  readonly authenticate: Authenticator;
  /** Subject the metrics are published to; the stream must cover it. */
  readonly subject: string;
  readonly logger: Logger;
  /** The receive time; defaults to `Date.now`. */
  readonly now?: () => number;
  /** A message id for a request without `Idempotency-Key`; defaults to a random UUID. */
  readonly newMessageId?: () => string;
  /** CORS for browsers on other origins; off by default. */
  readonly cors?: Cors;
}

/** The envelope's own bytes around the metrics: version, a message id escaped, receive time. */
const ENVELOPE_OVERHEAD_BYTES = 512;
const IDEMPOTENCY_KEY = new RegExp(`^[\\x21-\\x7e]{1,${REQUEST_LIMITS.idempotencyKeyLength}}$`);

/**
 * `POST /api/v1/metrics`: validates every metric of the request and publishes them all as one
 * JetStream message, answering 202 only once the stream acknowledged it. Any refusal publishes
 * nothing.
 */
export function createIngestHandler(options: IngestHandlerOptions): Handler {
  const now = options.now ?? Date.now;
  const log = options.logger;
  const newMessageId = options.newMessageId ?? randomUUID;
  const maxFutureMs = options.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS;

  async function ingest(req: Request, requestId: string): Promise<Response> {
    requirePost(req);
    const refusal = options.authenticate(req);
    if (refusal) throw refusal;
    const format = jsonEncodingOf(req.headers.get("content-type"));
    const msgId = idempotencyKey(req) ?? newMessageId();
    const receivedAt = now();
    // The body may be as large as the broker's message, less the envelope around the metrics
    // (whose re-serialisation is checked again before publishing), and never above our limit.
    const maxMessage = await options.publisher.maxMessageBytes();
    const bodyLimit = Math.min(REQUEST_LIMITS.bodyBytes, maxMessage - ENVELOPE_OVERHEAD_BYTES);
    const body = await readBodyText(req, bodyLimit);
    // A body's metrics are the body itself: what a request may become (EXPANSION_LIMITS) is
    // bounded here by the body limit, so no budget is spent. The message is their text as sent.
    const { metrics, data } = await computeInTurn(body.bytes, async () => {
      const bound = { receivedAt, maxFutureMs };
      const { metrics, texts } = await runInSlices(parseMetrics(body.pieces, format, bound));
      const data = encodeAsSent({ id: msgId, receivedAt, key: "message" }, texts);
      return { metrics, data };
    });

    const receipt = await options.publisher.publish({
      subject: options.subject,
      data,
      msgId,
      headers: traceHeaders(req),
    });
    // Debug, not info: a line per accepted request cost ~7 % of the handler's time in a profile
    // (bench/notes.md), and the answer itself carries the receipt.
    log.debug(
      { requestId, msgId, metrics: metrics.length, seq: receipt.seq, duplicate: receipt.duplicate },
      "accepted",
    );
    return jsonResponse(
      202,
      {
        status: "ok",
        accepted: metrics.length,
        id: msgId,
        duplicate: receipt.duplicate,
        stream: receipt.stream,
        seq: receipt.seq,
      },
      { "x-request-id": requestId },
    );
  }

  const answer = answerRequests(options.logger, ingest);
  const cors = options.cors ?? NO_CORS;
  return async (req) => {
    const preflight = cors.preflight(req);
    if (preflight) return preflight;
    return cors.decorate(req, await answer(req));
  };
}

function idempotencyKey(req: Request): string | undefined {
  const key = req.headers.get("idempotency-key");
  if (key === null) return undefined;
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new ApiError(
      "invalid_idempotency_key",
      `Idempotency-Key must be 1 to ${REQUEST_LIMITS.idempotencyKeyLength} visible ASCII characters.`,
    );
  }
  return key;
}

/** The JSON API's handler as every host makes it, from the service's context. */
export function ingestHandlerOf(context: ServiceContext): Handler {
  return createIngestHandler({
    publisher: context.publisher,
    authenticate: context.authenticator("json"),
    subject: jsonSubject(context.config.stream),
    logger: context.logger,
    cors: createCors(context.config.ingest.corsOrigins, "POST"),
    maxFutureMs: context.config.ingest.maxFutureMs,
  });
}
