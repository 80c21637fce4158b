import { ACCESS_REFUSALS } from "./auth.ts";
import { ApiError } from "./errors.ts";
import { errorResponse, internalError } from "./http-response.ts";
import type { Logger } from "../../shared/logger.ts";
import { requestIdOf } from "./request-id.ts";

export type Handler = (req: Request) => Promise<Response>;

/** Turns a refusal into the protocol's own error answer; the API's JSON error by default. */
export type ErrorAnswer = (
  err: ApiError,
  requestId: string,
  req: Request,
) => Response | Promise<Response>;

/**
 * What every endpoint does around its own work, in one place: the request id, then any refusal
 * (an ApiError) logged and answered in the endpoint's error format, and anything else logged as
 * a bug and answered with an opaque 500 that quotes the request id. A refused key or source is
 * not logged here: the access check logs those at most once a second per client.
 */
export function answerRequests(
  logger: Logger,
  serve: (req: Request, requestId: string) => Promise<Response>,
  errorAnswer: ErrorAnswer = errorResponse,
): Handler {
  return async (req) => {
    const requestId = requestIdOf(req);
    try {
      return await serve(req, requestId);
    } catch (err) {
      if (err instanceof ApiError) {
        if (!ACCESS_REFUSALS.has(err.code)) {
          const level = err.status >= 500 ? "warn" : "info";
          const cause = err.cause instanceof Error ? err.cause.message : undefined;
          logger[level]({ requestId, code: err.code, status: err.status, cause }, "refused");
        }
        return errorAnswer(err, requestId, req);
      }
      logger.error({ requestId, err }, "unexpected error");
      return errorAnswer(internalError(requestId), requestId, req);
    }
  };
}

/** Every ingest endpoint takes POST only: anything else is a 405 (`Allow: POST`). */
export function requirePost(req: Request): void {
  if (req.method !== "POST") {
    throw new ApiError("method_not_allowed", `${req.method} is not allowed here; use POST.`);
  }
}
