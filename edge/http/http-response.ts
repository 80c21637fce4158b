import { ApiError, ERRORS } from "./errors.ts";

const JSON_TYPE = "application/json; charset=utf-8";

export function jsonResponse(
  status: number,
  body: unknown,
  headers: Headers | Record<string, string> = {},
): Response {
  const h = new Headers(headers);
  h.set("content-type", JSON_TYPE);
  return new Response(JSON.stringify(body), { status, headers: h });
}

/** The headers of an error answer in any format: request id, Retry-After, Allow, WWW-Authenticate. */
export function errorHeaders(error: ApiError, requestId: string): Headers {
  const headers = new Headers({ "x-request-id": requestId });
  const spec: { status: number; retryAfter?: number } = ERRORS[error.code];
  if (spec.retryAfter !== undefined) headers.set("retry-after", String(spec.retryAfter));
  if (error.code === "method_not_allowed") headers.set("allow", "POST");
  if (error.code === "unauthorized") headers.set("www-authenticate", 'Bearer realm="metrics"');
  return headers;
}

/** The one JSON error shape: `{"status":"error","error":{code,message,details?},"requestId"}`. */
export function errorResponse(error: ApiError, requestId: string): Response {
  return jsonResponse(error.status, errorBody(error, requestId), errorHeaders(error, requestId));
}

/** The JSON error body, for a format that wraps it (the InfluxDB endpoint's). */
export function errorBody(error: ApiError, requestId: string) {
  return {
    status: "error",
    error: {
      code: error.code,
      message: error.message,
      ...(error.details ? { details: error.details } : {}),
    },
    requestId,
  };
}

/** Anything unexpected: an opaque 500 whose only detail is the request id to find it in the logs. */
export function internalError(requestId: string): ApiError {
  return new ApiError(
    "internal_error",
    `An internal error occurred; quote request id ${requestId}.`,
  );
}

export function internalErrorResponse(requestId: string): Response {
  return errorResponse(internalError(requestId), requestId);
}
