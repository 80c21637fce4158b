/**
 * A remote write 1.0 request body: a protobuf `WriteRequest`, compressed as one Snappy block
 * (the block format, not the framed one), as the specification asks.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { compress } from "snappyjs";
import { WriteRequestSchema } from "../shared/gen/proto/prometheus/remote_pb.js";
import type { OutgoingSeries } from "./remote-write-labels.ts";

/** The headers every remote write 1.0 request carries, besides authentication. */
export function remoteWriteHeaders(userAgent: string): Record<string, string> {
  return {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": userAgent,
  };
}

/** The body of a request carrying `series`. */
export function encodeWriteRequest(series: readonly OutgoingSeries[]): Uint8Array {
  const request = create(WriteRequestSchema, {
    timeseries: series.map((s) => ({ labels: [...s.labels], samples: s.samples })),
  });
  return compress(toBinary(WriteRequestSchema, request));
}
