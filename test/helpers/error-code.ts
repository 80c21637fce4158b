import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { fromBinary } from "@bufbuild/protobuf";
import { ErrorInfoSchema } from "../../shared/gen/proto/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../shared/gen/proto/google/rpc/status_pb.js";

/**
 * The catalogue code of an error answer, whichever protocol answered: the JSON error body's
 * `error.code` (the JSON API, InfluxDB and remote write), or the reason of the `ErrorInfo` in
 * an OTLP `google.rpc.Status`.
 */
export function errorCodeOf(contentType: string | null, body: Uint8Array): string | undefined {
  if (contentType === "application/x-protobuf") {
    const status = fromBinary(StatusSchema, body);
    return status.details
      .map((detail) => anyUnpack(detail, ErrorInfoSchema))
      .find((info) => info !== undefined)?.reason;
  }
  const json = JSON.parse(new TextDecoder().decode(body)) as {
    error?: { code?: string };
    details?: { "@type"?: string; reason?: string }[];
  };
  return json.error?.code ?? json.details?.find((d) => d["@type"]?.endsWith("ErrorInfo"))?.reason;
}
