import { gunzipSync } from "node:zlib";
import { fromBinary, fromJson, toJson, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runToEnd } from "../../shared/cooperative.ts";
import { ExportMetricsServiceRequestSchema } from "../../shared/gen/proto/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js";
import { WriteRequestSchema } from "../../shared/gen/proto/prometheus/remote_pb.js";
import { fromBinaryInSteps, fromJsonInSteps } from "../../edge/publish/protobuf-steps.ts";
import { decodeSnappyBlock } from "../../edge/remote-write/snappy-block.ts";
import { otelSdkExport, prometheusBatch, type Payload } from "../helpers/payloads.ts";

const OTLP = { depth: 3, recursionLimit: 100 };
const otlpBytes = (p: Payload) => new Uint8Array(gunzipSync(p.body));
const otlp = otlpBytes(otelSdkExport(3));
const remoteWrite = decodeSnappyBlock(prometheusBatch(20, 3).body, 1 << 20);

/** What a decoder gives, or that it refused (its message may name another level). */
function outcome(decode: () => unknown): unknown {
  try {
    return { value: decode() };
  } catch {
    return "refused";
  }
}

/**
 * Whether an element of a list that fromBinaryInSteps takes apart (repeated message fields, to
 * `depth` levels) holds bytes that do not end on a field's boundary.
 */
function overrunsNestedLength(
  bytes: Uint8Array,
  schema: DescMessage = ExportMetricsServiceRequestSchema,
  depth = OTLP.depth,
): boolean {
  const reader = new BinaryReader(bytes);
  try {
    while (reader.pos < reader.len) {
      const [number, wireType] = reader.tag();
      const field = schema.fields.find((f) => f.number === number);
      const list =
        depth > 0 && field?.fieldKind === "list" && field.listKind === "message"
          ? field
          : undefined;
      if (list === undefined || wireType !== WireType.LengthDelimited) {
        reader.skip(wireType, number);
        continue;
      }
      const inner = reader.bytes();
      if (fieldsOverrun(inner) || overrunsNestedLength(inner, list.message, depth - 1)) return true;
    }
  } catch {
    return false;
  }
  return false;
}

/** Whether the bytes do not end on a field's boundary. */
function fieldsOverrun(bytes: Uint8Array): boolean {
  const reader = new BinaryReader(bytes);
  try {
    while (reader.pos < reader.len) {
      const [number, wireType] = reader.tag();
      reader.skip(wireType, number);
    }
    return false;
  } catch {
    return true;
  }
}

describe("fromBinaryInSteps", () => {
  it("decodes what fromBinary decodes, an OTLP export and a remote write", () => {
    const opts = { readUnknownFields: false, recursionLimit: 100 };
    expect(runToEnd(fromBinaryInSteps(ExportMetricsServiceRequestSchema, otlp, OTLP))).toEqual(
      fromBinary(ExportMetricsServiceRequestSchema, otlp, opts),
    );
    expect(
      runToEnd(
        fromBinaryInSteps(WriteRequestSchema, remoteWrite, { depth: 1, recursionLimit: 100 }),
      ),
    ).toEqual(fromBinary(WriteRequestSchema, remoteWrite, opts));
  });

  it("merges a message sent in parts, as protobuf does", () => {
    // Concatenated messages are one message: lists appended, singular messages merged.
    const twice = Buffer.concat([otlp, otlp]);
    expect(runToEnd(fromBinaryInSteps(ExportMetricsServiceRequestSchema, twice, OTLP))).toEqual(
      fromBinary(ExportMetricsServiceRequestSchema, twice, { readUnknownFields: false }),
    );
  });

  it("pauses between the elements of the lists it takes apart", () => {
    const steps = fromBinaryInSteps(ExportMetricsServiceRequestSchema, otlp, OTLP);
    let pauses = 0;
    while (!steps.next().done) pauses++;
    // 1 resource, 2 scopes and 5 metrics.
    expect(pauses).toBe(8);
  });

  // protobuf-es reads a nested message's fields on past the length that message declared
  // (its reader has no bound per message); taken apart element by element, each element is read
  // within its own bytes, so such a body is refused. Anything else decodes or fails alike.
  it("decodes anything as fromBinary does, refusing what it refuses and more only when a nested message overruns its length", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: otlp.length - 1 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.nat({ max: otlp.length }),
        (changes, cut) => {
          const bytes = otlp.slice(0, Math.max(cut, 1));
          for (const [at, value] of changes) if (at < bytes.length) bytes[at] = value;
          const stepwise = outcome(() =>
            runToEnd(fromBinaryInSteps(ExportMetricsServiceRequestSchema, bytes, OTLP)),
          );
          const whole = outcome(() =>
            fromBinary(ExportMetricsServiceRequestSchema, bytes, {
              readUnknownFields: false,
              recursionLimit: 100,
            }),
          );
          if (stepwise === "refused" && whole !== "refused") {
            expect(overrunsNestedLength(bytes)).toBe(true);
          } else {
            expect(stepwise).toEqual(whole);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("refuses a resource whose field runs past the resource's own length", () => {
    // resourceMetrics (field 1) of 1 byte holding only the tag of its resource (field 1, bytes):
    // the resource's length byte lies outside the element.
    const bytes = new Uint8Array([0x0a, 0x01, 0x0a, 0x00]);
    expect(() =>
      fromBinary(ExportMetricsServiceRequestSchema, bytes, { readUnknownFields: false }),
    ).not.toThrow();
    expect(overrunsNestedLength(bytes)).toBe(true);
    expect(() =>
      runToEnd(fromBinaryInSteps(ExportMetricsServiceRequestSchema, bytes, OTLP)),
    ).toThrow();
  });
});

describe("fromJsonInSteps", () => {
  const json = toJson(
    ExportMetricsServiceRequestSchema,
    fromBinary(ExportMetricsServiceRequestSchema, otlp),
  );
  const snakeCase = JSON.parse(
    JSON.stringify(json)
      .replaceAll('"resourceMetrics"', '"resource_metrics"')
      .replaceAll('"scopeMetrics"', '"scope_metrics"'),
  ) as JsonValue;
  const opts = { ignoreUnknownFields: true, recursionLimit: 100 };

  it("decodes what fromJson decodes, under either name of a field", () => {
    for (const value of [json, snakeCase]) {
      expect(runToEnd(fromJsonInSteps(ExportMetricsServiceRequestSchema, value, OTLP))).toEqual(
        fromJson(ExportMetricsServiceRequestSchema, value, opts),
      );
    }
  });

  it("decodes or refuses any JSON put anywhere in a request as fromJson does", () => {
    const paths = [
      "resourceMetrics",
      "resourceMetrics.0.scopeMetrics",
      "resourceMetrics.0.scopeMetrics.0.metrics",
      "resourceMetrics.0.scopeMetrics.0.metrics.0",
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...paths),
        fc.jsonValue({ maxDepth: 3 }),
        fc.boolean(),
        (path, value, both) => {
          const copy = JSON.parse(JSON.stringify(json)) as Record<string, unknown>;
          const keys = path.split(".");
          const last = keys.pop() ?? "";
          let at: Record<string, unknown> = copy;
          for (const key of keys) at = at[key] as Record<string, unknown>;
          if (Array.isArray(at[last])) (at[last] as unknown[]).push(value);
          else at[last] = value;
          // The same list under its other name too, which fromJson refuses or merges.
          if (both) copy["resource_metrics"] = copy["resourceMetrics"];
          expect(
            outcome(() =>
              runToEnd(fromJsonInSteps(ExportMetricsServiceRequestSchema, copy as JsonValue, OTLP)),
            ),
          ).toEqual(
            outcome(() => fromJson(ExportMetricsServiceRequestSchema, copy as JsonValue, opts)),
          );
        },
      ),
      { numRuns: 500 },
    );
  });
});
