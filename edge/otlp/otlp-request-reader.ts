/**
 * An OTLP `ExportMetricsServiceRequest` read by hand, for what SDKs and collectors send most:
 * gauges and sums of number data points. protobuf-es's reflective reader made every point, its
 * attributes and their values through the schema (~a quarter of an OTLP request at the edge);
 * here a point is read in place, and its attributes — the same bytes request after request for
 * a series — are decoded once and kept by their bytes, one list for every point that has them.
 *
 * The rest is left to protobuf-es: a resource and a scope (once each per request), an attribute
 * list not seen before, and each metric this reader does not read (histograms, summaries,
 * points with exemplars, a field it does not know, a message given twice), decoded on its own
 * as protobuf-es decodes every metric of a request. Anything else amiss — a string that is not
 * UTF-8, bytes that end early — makes it give up (undefined), and the request is decoded by
 * protobuf-es as before (`decodeRequest`). So this reader only ever returns what protobuf-es
 * would have returned for the same bytes (test/unit/otlp-request-reader.test.ts compares
 * them), and nothing otherwise.
 * The objects it returns are shared and must not be changed.
 */
import { fromBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { BoundedMemo } from "../../shared/bounded-memo.ts";
import { runToEnd, type Steps } from "../../shared/cooperative.ts";
import type { ExportMetricsServiceRequest } from "../../shared/gen/proto/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js";
import {
  InstrumentationScopeSchema,
  KeyValueSchema,
  type InstrumentationScope,
  type KeyValue,
} from "../../shared/gen/proto/opentelemetry/proto/common/v1/common_pb.js";
import {
  AggregationTemporality,
  MetricSchema,
  type Gauge,
  type Metric,
  type NumberDataPoint,
  type ResourceMetrics,
  type ScopeMetrics,
  type Sum,
} from "../../shared/gen/proto/opentelemetry/proto/metrics/v1/metrics_pb.js";
import {
  ResourceSchema,
  type Resource,
} from "../../shared/gen/proto/opentelemetry/proto/resource/v1/resource_pb.js";
import {
  BIT64,
  GiveUp,
  LENGTH_DELIMITED,
  ProtobufReader,
  VARINT,
} from "../publish/protobuf-reader.ts";
import { fromBinaryInSteps } from "../publish/protobuf-steps.ts";

/**
 * The recursion limit protobuf-es decodes a request with (`decodeRequest`), and how deep each
 * message this reader hands to it lies, the request counted as 0: decoded on its own, it gets
 * what is left of the limit, so that a value nested too deeply is refused as it is there.
 */
const RECURSION_LIMIT = 100;
const RESOURCE_DEPTH = 2; // request, resource_metrics, resource
const SCOPE_DEPTH = 3; // request, resource_metrics, scope_metrics, scope
const METRIC_DEPTH = 3; // request, resource_metrics, scope_metrics, metrics
const POINT_ATTRIBUTE_DEPTH = 6; // … scope_metrics, metrics, gauge or sum, data_points, attributes

/** The empty list every point without attributes or exemplars shares: frozen, as it is shared. */
const NONE: never[] = [];
Object.freeze(NONE);

/**
 * The request in `bytes`, read metric by metric (`Steps`), or undefined when it is not well
 * formed or holds what only protobuf-es reads outside a metric: then protobuf-es decides.
 */
export function* readExportRequest(
  bytes: Uint8Array,
): Steps<ExportMetricsServiceRequest | undefined> {
  const reader = new ProtobufReader(bytes);
  const resourceMetrics: ResourceMetrics[] = [];
  try {
    while (reader.pos < bytes.length) {
      const end = reader.field(1, LENGTH_DELIMITED);
      resourceMetrics.push(yield* readResourceMetrics(reader, end));
    }
  } catch (err) {
    if (err instanceof GiveUp) return undefined;
    throw err;
  }
  return {
    $typeName: "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest",
    resourceMetrics,
  };
}

/** The next field of a message ending at `end`, which must be length-delimited, and its end. */
function nextField(reader: ProtobufReader, end: number): [field: number, until: number] {
  const [field, wireType] = reader.tag();
  if (wireType !== LENGTH_DELIMITED) throw new GiveUp();
  return [field, reader.lengthEnd(end)];
}

/** Gives up unless the reader is at `end`: a field or message read to its last byte. */
function endsAt(reader: ProtobufReader, end: number): void {
  if (reader.pos !== end) throw new GiveUp();
}

function* readResourceMetrics(reader: ProtobufReader, end: number): Steps<ResourceMetrics> {
  let resource: Resource | undefined;
  const scopeMetrics: ScopeMetrics[] = [];
  let schemaUrl = "";
  while (reader.pos < end) {
    const [field, until] = nextField(reader, end);
    if (field === 1 && resource === undefined) {
      resource = decoded(ResourceSchema, reader, until, RESOURCE_DEPTH);
    } else if (field === 2) scopeMetrics.push(yield* readScopeMetrics(reader, until));
    else if (field === 3) schemaUrl = reader.text(until);
    // A message given twice is merged by protobuf; instrumentation_library_metrics (1000) is
    // for senders from before scopes: protobuf-es reads those.
    else throw new GiveUp();
    endsAt(reader, until);
  }
  endsAt(reader, end);
  // As protobuf-es makes it: a message field not sent is not there at all.
  return {
    $typeName: "opentelemetry.proto.metrics.v1.ResourceMetrics",
    ...(resource === undefined ? {} : { resource }),
    scopeMetrics,
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- the field exists, empty
    instrumentationLibraryMetrics: [],
    schemaUrl,
  };
}

function* readScopeMetrics(reader: ProtobufReader, end: number): Steps<ScopeMetrics> {
  let scope: InstrumentationScope | undefined;
  const metrics: Metric[] = [];
  let schemaUrl = "";
  while (reader.pos < end) {
    const [field, until] = nextField(reader, end);
    if (field === 1 && scope === undefined) {
      scope = decoded(InstrumentationScopeSchema, reader, until, SCOPE_DEPTH);
    } else if (field === 2) {
      metrics.push(readOrDecodeMetric(reader, until));
      yield;
    } else if (field === 3) schemaUrl = reader.text(until);
    else throw new GiveUp();
    endsAt(reader, until);
  }
  endsAt(reader, end);
  return {
    $typeName: "opentelemetry.proto.metrics.v1.ScopeMetrics",
    ...(scope === undefined ? {} : { scope }),
    metrics,
    schemaUrl,
  };
}

/**
 * A metric read by hand, or by protobuf-es when it is one this reader does not read (a histogram,
 * a summary, a point with exemplars…), as protobuf-es reads each metric of a request: an SDK's
 * export mixes kinds, and one histogram need not make its gauges and sums slow too.
 */
function readOrDecodeMetric(reader: ProtobufReader, end: number): Metric {
  const start = reader.pos;
  try {
    return readMetric(reader, end);
  } catch (err) {
    if (!(err instanceof GiveUp)) throw err;
  }
  // As `decodeRequest`'s protobuf-es reading decodes each metric: in steps, which first walks
  // the metric's own fields (and refuses some bytes a plain `fromBinary` would take).
  reader.pos = start;
  return decodedBy(reader, end, (bytes) =>
    runToEnd(
      fromBinaryInSteps(MetricSchema, bytes, {
        depth: 0,
        recursionLimit: RECURSION_LIMIT - METRIC_DEPTH,
      }),
    ),
  );
}

function readMetric(reader: ProtobufReader, end: number): Metric {
  const metric: Metric = {
    $typeName: "opentelemetry.proto.metrics.v1.Metric",
    name: "",
    description: "",
    unit: "",
    data: { case: undefined },
  };
  while (reader.pos < end) {
    const [field, until] = nextField(reader, end);
    if (field === 1) metric.name = reader.text(until);
    else if (field === 2) metric.description = reader.text(until);
    else if (field === 3) metric.unit = reader.text(until);
    // A second kind replaces the first in protobuf, and a second gauge merges with it.
    else if (field === 5 && metric.data.case === undefined) {
      metric.data = { case: "gauge", value: readGauge(reader, until) };
    } else if (field === 7 && metric.data.case === undefined) {
      metric.data = { case: "sum", value: readSum(reader, until) };
    } else throw new GiveUp();
    endsAt(reader, until);
  }
  endsAt(reader, end);
  return metric;
}

function readGauge(reader: ProtobufReader, end: number): Gauge {
  const dataPoints: NumberDataPoint[] = [];
  while (reader.pos < end) {
    const [field, wireType] = reader.tag();
    if (field !== 1 || wireType !== LENGTH_DELIMITED) throw new GiveUp();
    dataPoints.push(readNumberPoint(reader, reader.lengthEnd(end)));
  }
  endsAt(reader, end);
  return { $typeName: "opentelemetry.proto.metrics.v1.Gauge", dataPoints };
}

function readSum(reader: ProtobufReader, end: number): Sum {
  const sum: Sum = {
    $typeName: "opentelemetry.proto.metrics.v1.Sum",
    dataPoints: [],
    aggregationTemporality: AggregationTemporality.UNSPECIFIED,
    isMonotonic: false,
  };
  while (reader.pos < end) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === LENGTH_DELIMITED) {
      sum.dataPoints.push(readNumberPoint(reader, reader.lengthEnd(end)));
    } else if (field === 2 && wireType === VARINT) {
      // An enum is an int32: one past 2^31 is negative, ten bytes long, and given up on.
      const temporality = reader.varint32(end);
      if (temporality > 0x7fffffff) throw new GiveUp();
      // Open, as proto3 enums are: a value newer than this definition is kept as it is.
      // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- as protobuf-es does
      sum.aggregationTemporality = temporality;
    } else if (field === 3 && wireType === VARINT) {
      sum.isMonotonic = reader.varint32(end) !== 0;
    } else throw new GiveUp();
  }
  endsAt(reader, end);
  return sum;
}

function readNumberPoint(reader: ProtobufReader, end: number): NumberDataPoint {
  const point: NumberDataPoint = {
    $typeName: "opentelemetry.proto.metrics.v1.NumberDataPoint",
    attributes: NONE,
    startTimeUnixNano: 0n,
    timeUnixNano: 0n,
    value: { case: undefined },
    exemplars: NONE,
    flags: 0,
  };
  // Where the attributes' bytes are: one run of fields, as every encoder writes them.
  let attributesFrom = -1;
  let attributesUntil = -1;
  while (reader.pos < end) {
    const at = reader.pos;
    const [field, wireType] = reader.tag();
    if (field === 7 && wireType === LENGTH_DELIMITED) {
      if (attributesFrom === -1) attributesFrom = at;
      else if (attributesUntil !== at) throw new GiveUp();
      attributesUntil = reader.lengthEnd(end);
      reader.pos = attributesUntil;
    } else if (field === 2 && wireType === BIT64) point.startTimeUnixNano = reader.fixed64(end);
    else if (field === 3 && wireType === BIT64) point.timeUnixNano = reader.fixed64(end);
    else if (field === 4 && wireType === BIT64) {
      point.value = { case: "asDouble", value: reader.double(end) };
    } else if (field === 6 && wireType === BIT64) {
      point.value = { case: "asInt", value: reader.sfixed64(end) };
    } else if (field === 8 && wireType === VARINT) point.flags = reader.varint32(end);
    else throw new GiveUp();
  }
  endsAt(reader, end);
  if (attributesFrom !== -1) {
    const read = () => readAttributes(reader, attributesFrom, attributesUntil);
    point.attributes = reader.kept(
      knownAttributes,
      attributesFrom,
      attributesUntil,
      read,
    ) as KeyValue[];
    reader.pos = end;
  }
  return point;
}

/**
 * Attribute lists decoded already, by their bytes (one character a byte): an SDK sends the same
 * series interval after interval, and the same bytes always decode to the same list. A hit
 * gives back that same list, by which the converter finds the tags it made of it.
 */
const knownAttributes = new BoundedMemo<readonly KeyValue[]>(20_000);

/** The `attributes` fields between `from` and `until`, each decoded by protobuf-es. */
function readAttributes(reader: ProtobufReader, from: number, until: number): readonly KeyValue[] {
  const attributes: KeyValue[] = [];
  reader.pos = from;
  while (reader.pos < until) {
    reader.tag();
    const end = reader.lengthEnd(until);
    attributes.push(decoded(KeyValueSchema, reader, end, POINT_ATTRIBUTE_DEPTH));
  }
  return attributes;
}

/** The message of `schema` in the bytes up to `end`, as protobuf-es reads it at `depth`. */
function decoded<Desc extends DescMessage>(
  schema: Desc,
  reader: ProtobufReader,
  end: number,
  depth: number,
): MessageShape<Desc> {
  return decodedBy(reader, end, (bytes) =>
    fromBinary(schema, bytes, {
      readUnknownFields: false,
      recursionLimit: RECURSION_LIMIT - depth,
    }),
  );
}

/**
 * What `decode` makes of the bytes from the reader's position to `end`, which it then stands
 * at; a refusal gives up. The bytes are a Buffer, as protobuf-es's own reading makes `bytes`
 * fields (attribute values) Buffers.
 */
function decodedBy<T>(reader: ProtobufReader, end: number, decode: (bytes: Buffer) => T): T {
  const bytes = reader.buffer().subarray(reader.pos, end);
  reader.pos = end;
  try {
    return decode(bytes);
  } catch {
    throw new GiveUp();
  }
}
