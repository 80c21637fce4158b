/**
 * OTLP/HTTP's two encodings: binary protobuf and OTLP/JSON. Requests are decoded, and answers
 * (an `ExportMetricsServiceResponse`, or a `google.rpc.Status` for an error) encoded, in the
 * encoding of the request, as the OTLP specification asks.
 */
import { create, createRegistry, toBinary, toJson, type JsonValue } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RequestInfoSchema,
} from "../../shared/gen/proto/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../shared/gen/proto/google/rpc/status_pb.js";
import {
  ExportMetricsServiceRequestSchema,
  ExportMetricsServiceResponseSchema,
  type ExportMetricsServiceRequest,
} from "../../shared/gen/proto/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js";
import type { Steps } from "../../shared/cooperative.ts";
import { ApiError } from "../http/errors.ts";
import { errorHeaders } from "../http/http-response.ts";
import type { PointRefusal } from "./otlp-metrics.ts";
import { fromBinaryInSteps, fromJsonInSteps } from "../publish/protobuf-steps.ts";
import { readExportRequest } from "./otlp-request-reader.ts";

export type OtlpEncoding = "protobuf" | "json";

const CONTENT_TYPES: Readonly<Record<OtlpEncoding, string>> = {
  protobuf: "application/x-protobuf",
  json: "application/json",
};

/** The encoding a Content-Type names (parameters such as charset aside), if OTLP has it. */
export function otlpEncodingOf(contentType: string | null): OtlpEncoding | undefined {
  const type = (contentType ?? "").split(";")[0]?.trim().toLowerCase();
  if (type === CONTENT_TYPES.protobuf) return "protobuf";
  if (type === CONTENT_TYPES.json) return "json";
  return undefined;
}

/**
 * How deeply messages may nest in a request: protobuf-es's own default, stated here because it
 * also bounds attribute values (arrays and lists of arrays...), and so every recursion over
 * them. A request nests 8 levels down to a point's attribute value, which leaves arrays and
 * lists in attribute values some 45 levels (an array is two messages: AnyValue, ArrayValue).
 */
const RECURSION_LIMIT = 100;

/**
 * Decodes a request body; anything that is not a valid request is a 400. Each metric is
 * decoded on its own (`protobuf-steps.ts`), so a large body can be decoded in slices.
 */
export function* decodeRequest(
  bytes: Uint8Array,
  encoding: OtlpEncoding,
): Steps<ExportMetricsServiceRequest> {
  // A request's metrics are three levels down: resource_metrics, scope_metrics, metrics.
  const options = { depth: 3, recursionLimit: RECURSION_LIMIT };
  try {
    if (encoding === "protobuf") {
      // Gauges and sums of number points, read in place; anything else, by protobuf-es.
      const read = yield* readExportRequest(bytes);
      if (read !== undefined) return read;
      return yield* fromBinaryInSteps(ExportMetricsServiceRequestSchema, bytes, options);
    }
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    // OTLP/JSON differs from protobuf's JSON mapping in one way that matters here: trace and
    // span ids are hex, not base64. Fields a newer OTLP added must be ignored, not refused.
    const json = JSON.parse(text, hexIdsAsBase64) as JsonValue;
    return yield* fromJsonInSteps(ExportMetricsServiceRequestSchema, json, options);
  } catch (err) {
    // A body nested deeply enough exhausts the decoder's stack: that is bad input too.
    const reason =
      err instanceof RangeError
        ? "it is nested too deeply"
        : err instanceof Error
          ? err.message.slice(0, 300)
          : String(err);
    throw new ApiError(
      "malformed_body",
      `The body is not an ExportMetricsServiceRequest in ${encoding === "json" ? "OTLP/JSON" : "protobuf"}: ${reason}`,
      { cause: err },
    );
  }
}

/** The OTLP/JSON names of the fields that hold ids (an exemplar's), with their byte lengths. */
const HEX_ID_BYTES: Readonly<Record<string, number>> = { traceId: 16, spanId: 8 };

function hexIdsAsBase64(key: string, value: unknown): unknown {
  const bytes = HEX_ID_BYTES[key];
  if (bytes === undefined || typeof value !== "string") return value;
  // An empty id is an unset one.
  if ((value.length !== bytes * 2 && value !== "") || !/^[0-9a-fA-F]*$/.test(value)) {
    throw new Error(`${key} must be ${bytes * 2} hex digits`);
  }
  return Buffer.from(value, "hex").toString("base64");
}

/** The success answer: 200 with an `ExportMetricsServiceResponse`. */
export function exportResponse(
  encoding: OtlpEncoding,
  partialSuccess: { rejectedDataPoints: number; errorMessage: string } | undefined,
  requestId: string,
): Response {
  const message = create(ExportMetricsServiceResponseSchema, {
    ...(partialSuccess
      ? {
          partialSuccess: {
            rejectedDataPoints: BigInt(partialSuccess.rejectedDataPoints),
            errorMessage: partialSuccess.errorMessage,
          },
        }
      : {}),
  });
  const body =
    encoding === "protobuf"
      ? toBinary(ExportMetricsServiceResponseSchema, message)
      : JSON.stringify(toJson(ExportMetricsServiceResponseSchema, message));
  return new Response(body, {
    status: 200,
    headers: { "content-type": CONTENT_TYPES[encoding], "x-request-id": requestId },
  });
}

/** The product's name for its errors' domain in `google.rpc.ErrorInfo`. */
const ERROR_DOMAIN = "metrics-ingest";

/** gRPC's code for each HTTP status the service answers with, for `Status.code`. */
const GRPC_CODES: Readonly<Record<number, number>> = {
  400: 3, // INVALID_ARGUMENT
  401: 16, // UNAUTHENTICATED
  403: 7, // PERMISSION_DENIED
  404: 5, // NOT_FOUND
  405: 12, // UNIMPLEMENTED
  413: 8, // RESOURCE_EXHAUSTED
  415: 3, // INVALID_ARGUMENT
  429: 8, // RESOURCE_EXHAUSTED
  503: 14, // UNAVAILABLE
};
const GRPC_INTERNAL = 13;

const detailTypes = createRegistry(ErrorInfoSchema, RequestInfoSchema, BadRequestSchema);

/** The refusal of a request none of whose data points can be stored, naming each point. */
export class PointsRefused extends ApiError {
  readonly refusals: readonly PointRefusal[];

  constructor(message: string, refusals: readonly PointRefusal[]) {
    super("invalid_metrics", message);
    this.name = "PointsRefused";
    this.refusals = refusals;
  }
}

/**
 * An error answer: the status and headers of the service's error catalogue (Retry-After on the
 * retryable ones), and for body a `google.rpc.Status` whose details carry the error's code
 * (`ErrorInfo.reason`), the request id (`RequestInfo`) and, for refused points, a `BadRequest`
 * naming each of them.
 */
export function statusResponse(
  error: ApiError,
  encoding: OtlpEncoding,
  requestId: string,
): Response {
  const refusals = error instanceof PointsRefused ? error.refusals : [];
  const details = [
    anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: error.code, domain: ERROR_DOMAIN })),
    anyPack(RequestInfoSchema, create(RequestInfoSchema, { requestId })),
  ];
  if (refusals.length > 0) {
    details.push(
      anyPack(BadRequestSchema, create(BadRequestSchema, { fieldViolations: [...refusals] })),
    );
  }
  const status = create(StatusSchema, {
    code: GRPC_CODES[error.status] ?? GRPC_INTERNAL,
    message: error.message,
    details,
  });
  // The JSON API's headers for the error (X-Request-Id, Retry-After, Allow, WWW-Authenticate).
  const headers = errorHeaders(error, requestId);
  headers.set("content-type", CONTENT_TYPES[encoding]);
  const body =
    encoding === "protobuf"
      ? toBinary(StatusSchema, status)
      : JSON.stringify(toJson(StatusSchema, status, { registry: detailTypes }));
  return new Response(body, { status: error.status, headers });
}
