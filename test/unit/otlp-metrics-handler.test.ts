import { gzipSync } from "node:zlib";
import {
  create,
  createRegistry,
  fromBinary,
  fromJson,
  toBinary,
  type DescMessage,
  type JsonValue,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../edge/http/errors.ts";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RequestInfoSchema,
} from "../../shared/gen/proto/google/rpc/error_details_pb.js";
import { StatusSchema, type Status } from "../../shared/gen/proto/google/rpc/status_pb.js";
import {
  ExportMetricsServiceRequestSchema,
  ExportMetricsServiceResponseSchema,
} from "../../shared/gen/proto/opentelemetry/proto/collector/metrics/v1/metrics_service_pb.js";
import { REQUEST_LIMITS } from "../../shared/limits.ts";
import { createOtlpMetricsHandler } from "../../edge/otlp/otlp-metrics-handler.ts";
import { agentOptions, publishedMetrics, type AgentSetup } from "../helpers/agent.ts";
import { postTo } from "../helpers/requests.ts";

type RequestInit = MessageInitShape<typeof ExportMetricsServiceRequestSchema>;

const NOW = 1_714_566_999_000;
const SUBJECT = "metrics.otlp";
const KEY = "s3cret-key";
const PROTOBUF = { "content-type": "application/x-protobuf" };
const JSON_TYPE = { "content-type": "application/json" };
/** 2024-05-01T12:34:56.789123456Z */
const T = 1_714_566_896_789_123_456n;
const TIME = "2024-05-01T12:34:56.789123456Z";
const TAGS = { "service.name": "checkout", "otel.scope.name": "meter" };

function otlp(setup: AgentSetup = {}) {
  const { options, published } = agentOptions(SUBJECT, NOW, setup);
  /** Every metric published, in order, from messages that the worker would accept. */
  const metrics = () => publishedMetrics(published, SUBJECT);
  return { handler: createOtlpMetricsHandler(options), published, metrics };
}

const post = postTo("/v1/metrics");

function encode(init: RequestInit): Uint8Array {
  return toBinary(
    ExportMetricsServiceRequestSchema,
    create(ExportMetricsServiceRequestSchema, init),
  );
}

/** A request with one gauge whose points have `values` (0 for none: a refused point). */
function gaugeRequest(values: readonly number[]): RequestInit {
  return {
    resourceMetrics: [
      {
        resource: {
          attributes: [
            { key: "service.name", value: { value: { case: "stringValue", value: "checkout" } } },
          ],
        },
        scopeMetrics: [
          {
            scope: { name: "meter" },
            metrics: [
              {
                name: "temperature",
                data: {
                  case: "gauge",
                  value: {
                    dataPoints: values.map((value, i) => ({
                      timeUnixNano: value === 0 ? 0n : T + BigInt(i),
                      value: { case: "asDouble" as const, value },
                    })),
                  },
                },
              },
            ],
          },
        ],
      },
    ],
  };
}

/** What the JSON exporter of the OpenTelemetry JS SDK sends: OTLP/JSON's own conventions. */
const EXPORTER_JSON = {
  resourceMetrics: [
    {
      resource: {
        attributes: [{ key: "service.name", value: { stringValue: "checkout" } }],
        droppedAttributesCount: 0,
      },
      scopeMetrics: [
        {
          scope: { name: "meter", version: "" },
          metrics: [
            {
              name: "requests",
              description: "",
              unit: "",
              sum: {
                aggregationTemporality: 2,
                isMonotonic: true,
                dataPoints: [
                  {
                    attributes: [
                      { key: "route", value: { stringValue: "/" } },
                      { key: "ok", value: { boolValue: true } },
                    ],
                    startTimeUnixNano: "1714566800000000000",
                    timeUnixNano: String(T),
                    asInt: 3,
                  },
                ],
              },
            },
            {
              name: "latency",
              unit: "ms",
              histogram: {
                aggregationTemporality: 2,
                dataPoints: [
                  {
                    attributes: [],
                    bucketCounts: [1, 0, 1],
                    explicitBounds: [10, 100],
                    count: 2,
                    sum: 120,
                    min: 5,
                    max: 115,
                    startTimeUnixNano: "1714566800000000000",
                    timeUnixNano: String(T),
                    exemplars: [
                      {
                        timeUnixNano: String(T),
                        asDouble: 115,
                        spanId: "b7ad6b7169203331",
                        traceId: "0af7651916cd43dd8448eb211c80319c",
                      },
                    ],
                  },
                ],
              },
              aFieldOfANewerOtlp: { ignored: true },
            },
          ],
        },
      ],
    },
  ],
};

const EXPORTER_METRICS: unknown[] = [
  {
    name: "requests",
    value: 3,
    timestamp: TIME,
    tags: { ...TAGS, route: "/", ok: "true" },
    kind: "sum",
    startTime: "2024-05-01T12:33:20.000000000Z",
    temporality: "cumulative",
    monotonic: true,
  },
  {
    name: "latency",
    value: 120,
    timestamp: TIME,
    tags: TAGS,
    kind: "histogram",
    unit: "ms",
    startTime: "2024-05-01T12:33:20.000000000Z",
    temporality: "cumulative",
    histogram: { count: 2, sum: 120, min: 5, max: 115, bounds: [10, 100], counts: [1, 0, 1] },
  },
];

const detailTypes = createRegistry(ErrorInfoSchema, RequestInfoSchema, BadRequestSchema);

/** The body of an error answer, decoded in the encoding it declares. */
async function statusOf(res: Response): Promise<Status> {
  const type = res.headers.get("content-type");
  if (type === "application/x-protobuf") {
    return fromBinary(StatusSchema, new Uint8Array(await res.arrayBuffer()));
  }
  expect(type).toBe("application/json");
  return fromJson(StatusSchema, (await res.json()) as JsonValue, { registry: detailTypes });
}

function errorInfo(status: Status) {
  const detail = <Desc extends DescMessage>(schema: Desc) =>
    status.details.map((any) => anyUnpack(any, schema)).find((d) => d !== undefined);
  return {
    reason: detail(ErrorInfoSchema)?.reason,
    requestId: detail(RequestInfoSchema)?.requestId,
    violations: detail(BadRequestSchema)?.fieldViolations.map(({ field, description }) => ({
      field,
      description,
    })),
  };
}

describe("POST /v1/metrics", () => {
  it("stores a protobuf request's points and answers 200 with an empty ExportMetricsServiceResponse", async () => {
    const { handler, published, metrics } = otlp();
    const res = await handler(post(encode(gaugeRequest([21.5, 22])), PROTOBUF));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-protobuf");
    expect(res.headers.get("x-request-id")).toBeTruthy();
    const body = new Uint8Array(await res.arrayBuffer());
    expect(body).toHaveLength(0);
    expect(fromBinary(ExportMetricsServiceResponseSchema, body).partialSuccess).toBeUndefined();
    expect(published.map((m) => m.subject)).toEqual([SUBJECT]);
    expect(metrics()).toEqual([
      { name: "temperature", value: 21.5, timestamp: TIME, tags: TAGS, kind: "gauge" },
      {
        name: "temperature",
        value: 22,
        timestamp: "2024-05-01T12:34:56.789123457Z",
        tags: TAGS,
        kind: "gauge",
      },
    ]);
  });

  it("reads OTLP/JSON as exporters write it (string nanoseconds, integer enums, hex ids, fields it does not know) and answers in JSON", async () => {
    const { handler, metrics } = otlp();
    const res = await handler(post(JSON.stringify(EXPORTER_JSON), JSON_TYPE));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toEqual({});
    expect(metrics()).toEqual(EXPORTER_METRICS);
  });

  it("takes gzip in both encodings, and a charset on the JSON type", async () => {
    const a = otlp();
    const proto = await a.handler(
      post(gzipSync(encode(gaugeRequest([1]))), { ...PROTOBUF, "content-encoding": "gzip" }),
    );
    expect(proto.status).toBe(200);
    expect(a.metrics().map((m) => m.value)).toEqual([1]);

    const b = otlp();
    const json = await b.handler(
      post(gzipSync(JSON.stringify(EXPORTER_JSON)), {
        "content-type": "application/json; charset=utf-8",
        "content-encoding": "gzip",
      }),
    );
    expect(json.status).toBe(200);
    expect(b.metrics()).toEqual(EXPORTER_METRICS);
  });

  it("stores the valid points and counts the refused ones in partial_success, in the request's encoding", async () => {
    const a = otlp();
    const proto = await a.handler(post(encode(gaugeRequest([1, 0, 3, 0])), PROTOBUF));
    expect(proto.status).toBe(200);
    const answer = fromBinary(
      ExportMetricsServiceResponseSchema,
      new Uint8Array(await proto.arrayBuffer()),
    );
    expect(answer.partialSuccess?.rejectedDataPoints).toBe(2n);
    const at = (p: number) =>
      `resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[${p}]: has no time_unix_nano`;
    expect(answer.partialSuccess?.errorMessage).toBe(
      `2 of 4 data points were refused: ${at(1)}; ${at(3)}`,
    );
    expect(a.metrics().map((m) => m.value)).toEqual([1, 3]);

    const b = otlp();
    const json = await b.handler(
      post(
        JSON.stringify({
          resourceMetrics: [
            {
              scopeMetrics: [
                {
                  metrics: [
                    {
                      name: "m",
                      gauge: {
                        dataPoints: [
                          { timeUnixNano: String(T), asDouble: 1 },
                          { timeUnixNano: String(T + 1n), asDouble: "NaN" },
                        ],
                      },
                    },
                  ],
                },
              ],
            },
          ],
        }),
        JSON_TYPE,
      ),
    );
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual({
      partialSuccess: {
        rejectedDataPoints: "1",
        errorMessage:
          "1 of 2 data points were refused: resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[1]: as_double is NaN; it must be a finite number",
      },
    });
    expect(b.metrics().map((m) => m.value)).toEqual([1]);
  });

  it("answers 400 with a Status naming every refused point when none can be stored, and publishes nothing", async () => {
    const { handler, published } = otlp();
    const res = await handler(post(encode(gaugeRequest([0, 0])), PROTOBUF));
    expect(res.status).toBe(400);
    expect(res.headers.get("retry-after")).toBeNull();
    const status = await statusOf(res);
    expect(status.code).toBe(3);
    expect(status.message).toMatch(
      /^No data point can be stored\. 2 of 2 data points were refused/,
    );
    const field = (p: number) =>
      `resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[${p}]`;
    expect(errorInfo(status)).toEqual({
      reason: "invalid_metrics",
      requestId: res.headers.get("x-request-id"),
      violations: [
        { field: field(0), description: "has no time_unix_nano" },
        { field: field(1), description: "has no time_unix_nano" },
      ],
    });
    expect(published).toHaveLength(0);
  });

  it("answers an empty request with success, as OTLP asks, and publishes nothing", async () => {
    for (const [body, headers] of [
      [new Uint8Array(0), PROTOBUF],
      ["{}", JSON_TYPE],
      ['{"resourceMetrics":[{"scopeMetrics":[{"metrics":[]}]}]}', JSON_TYPE],
    ] as const) {
      const { handler, published } = otlp();
      const res = await handler(post(body, headers));
      expect(res.status).toBe(200);
      expect(published).toHaveLength(0);
    }
  });

  it("warns in partial_success of a metric it cannot read, with no point rejected", async () => {
    const { handler } = otlp();
    const res = await handler(
      post('{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"new.kind"}]}]}]}', JSON_TYPE),
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as { partialSuccess: { errorMessage: string } };
    expect(body.partialSuccess.errorMessage).toMatch(
      /nothing of them was stored: metric "new.kind"/,
    );
    expect(body.partialSuccess).not.toHaveProperty("rejectedDataPoints");
  });

  it("gives a retried batch the same message ids, so that it adds nothing", async () => {
    const { handler, published } = otlp();
    const body = encode(gaugeRequest([1, 2, 3]));
    expect((await handler(post(body, PROTOBUF))).status).toBe(200);
    expect((await handler(post(body, PROTOBUF))).status).toBe(200);
    const [first, second] = published;
    expect(first?.msgId).toBeTruthy();
    expect(second?.msgId).toBe(first?.msgId);
  });

  it("refuses other media types with 415, in JSON since the request has no OTLP encoding", async () => {
    const { handler } = otlp();
    const res = await handler(post("x", { "content-type": "text/plain" }));
    expect(res.status).toBe(415);
    expect(errorInfo(await statusOf(res)).reason).toBe("unsupported_media_type");
  });

  it("refuses other methods with 405 and Allow: POST", async () => {
    const { handler } = otlp();
    const res = await handler(new Request("http://localhost/v1/metrics", { headers: PROTOBUF }));
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect(errorInfo(await statusOf(res)).reason).toBe("method_not_allowed");
  });

  it("asks for a bearer key when keys are configured, and takes the right one", async () => {
    const { handler, metrics } = otlp({ auth: { apiKeys: [KEY] } });
    const refused = await handler(post(encode(gaugeRequest([1])), PROTOBUF));
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(refused.headers.get("content-type")).toBe("application/x-protobuf");
    expect(errorInfo(await statusOf(refused)).reason).toBe("unauthorized");
    const wrong = await handler(
      post(encode(gaugeRequest([1])), { ...PROTOBUF, authorization: "Bearer nope" }),
    );
    expect(wrong.status).toBe(401);
    const ok = await handler(
      post(encode(gaugeRequest([1])), { ...PROTOBUF, authorization: `Bearer ${KEY}` }),
    );
    expect(ok.status).toBe(200);
    expect(metrics()).toHaveLength(1);
  });

  it("refuses more than 10,000 points with 413 too_many_metrics", async () => {
    const { handler, published } = otlp();
    const values = Array.from({ length: REQUEST_LIMITS.metricsPerRequest + 1 }, () => 1);
    const res = await handler(post(encode(gaugeRequest(values)), PROTOBUF));
    expect(res.status).toBe(413);
    const status = await statusOf(res);
    expect(errorInfo(status).reason).toBe("too_many_metrics");
    expect(status.message).toContain("10001 points");
    expect(published).toHaveLength(0);
  });

  it("takes exactly 10,000 points", async () => {
    const { handler, metrics } = otlp();
    const values = Array.from({ length: REQUEST_LIMITS.metricsPerRequest }, (_, i) => i + 1);
    const res = await handler(post(encode(gaugeRequest(values)), PROTOBUF));
    expect(res.status).toBe(200);
    expect(metrics()).toHaveLength(REQUEST_LIMITS.metricsPerRequest);
  });

  it("refuses a body over 1 MiB decompressed with 413", async () => {
    const { handler } = otlp();
    const big = gzipSync(new Uint8Array(REQUEST_LIMITS.bodyBytes + 1));
    const res = await handler(post(big, { ...PROTOBUF, "content-encoding": "gzip" }));
    expect(res.status).toBe(413);
    expect(errorInfo(await statusOf(res)).reason).toBe("body_too_large");
  });

  it("answers a body that does not decode with 400 malformed_body, in the request's encoding", async () => {
    const { handler } = otlp();
    const proto = await handler(post(new Uint8Array([0x0a, 0xff]), PROTOBUF));
    expect(proto.status).toBe(400);
    expect(proto.headers.get("content-type")).toBe("application/x-protobuf");
    expect(errorInfo(await statusOf(proto)).reason).toBe("malformed_body");

    for (const body of [
      "{",
      "[]",
      '{"resourceMetrics":7}',
      '{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"exemplars":[{"spanId":"xyz"}]}]}}]}]}]}',
    ]) {
      const json = await handler(post(body, JSON_TYPE));
      expect(json.status).toBe(400);
      expect(errorInfo(await statusOf(json)).reason).toBe("malformed_body");
    }
  });

  it("takes attributes nested as deeply as the decoder's recursion limit allows, and refuses deeper ones with 400", async () => {
    const nested = (depth: number): unknown =>
      depth === 0 ? { stringValue: "x" } : { arrayValue: { values: [nested(depth - 1)] } };
    const body = (depth: number) =>
      JSON.stringify({
        resourceMetrics: [
          {
            scopeMetrics: [
              {
                metrics: [
                  {
                    name: "m",
                    gauge: {
                      dataPoints: [
                        {
                          timeUnixNano: String(T),
                          asDouble: 1,
                          attributes: [{ key: "deep", value: nested(depth) }],
                        },
                      ],
                    },
                  },
                ],
              },
            ],
          },
        ],
      });
    const { handler, metrics } = otlp();
    expect((await handler(post(body(40), JSON_TYPE))).status).toBe(200);
    expect(metrics()[0]?.tags?.["deep"]).toBe(`${"[".repeat(40)}"x"${"]".repeat(40)}`);
    const deep = await handler(post(body(60), JSON_TYPE));
    expect(deep.status).toBe(400);
    const status = await statusOf(deep);
    expect(errorInfo(status).reason).toBe("malformed_body");
    // The decoder counts from the metric, where the request's three outer levels are spent.
    expect(status.message).toContain("maximum recursion depth of 97 reached");
  });

  it("answers 503 with Retry-After when the stream does not take the points, so the exporter retries", async () => {
    const { handler } = otlp({
      publish: () =>
        Promise.reject(new ApiError("nats_unavailable", "The broker cannot be reached.")),
    });
    const res = await handler(post(encode(gaugeRequest([1])), PROTOBUF));
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("2");
    const status = await statusOf(res);
    expect(status.code).toBe(14);
    expect(errorInfo(status).reason).toBe("nats_unavailable");
  });

  it("answers an unexpected failure with an opaque 500 carrying the request id", async () => {
    const { handler } = otlp({ publish: () => Promise.reject(new Error("secret detail")) });
    const res = await handler(
      post(encode(gaugeRequest([1])), { ...PROTOBUF, "x-request-id": "req-1" }),
    );
    expect(res.status).toBe(500);
    const status = await statusOf(res);
    expect(status.message).not.toContain("secret");
    expect(errorInfo(status)).toMatchObject({ reason: "internal_error", requestId: "req-1" });
  });
});

describe("hostile input", () => {
  const RUNS = { numRuns: 300 };
  const TYPES = ["application/x-protobuf", "application/json"] as const;

  /** The handler's answer to `body`: never a 5xx, never a throw, never an unstorable message. */
  async function answer(body: Uint8Array, type: string, gzip: boolean): Promise<number> {
    const { handler, metrics } = otlp();
    const headers: Record<string, string> = { "content-type": type };
    if (gzip) headers["content-encoding"] = "gzip";
    const res = await handler(post(gzip ? gzipSync(body) : body, headers));
    expect(res.status).toBeLessThan(500);
    metrics();
    return res.status;
  }

  it("answers random bytes, in either encoding and with or without gzip, below 500", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 2048 }),
        fc.constantFrom(...TYPES),
        fc.boolean(),
        async (bytes, type, gzip) => {
          await answer(bytes, type, gzip);
        },
      ),
      RUNS,
    );
  });

  const VALID = encode({
    resourceMetrics: [
      {
        resource: {
          attributes: [
            {
              key: "a",
              value: {
                value: {
                  case: "arrayValue",
                  value: { values: [{ value: { case: "intValue", value: 5n } }] },
                },
              },
            },
          ],
        },
        scopeMetrics: [
          {
            scope: {
              name: "s",
              version: "1",
              attributes: [{ key: "k", value: { value: { case: "boolValue", value: true } } }],
            },
            metrics: [
              ...(gaugeRequest([1, 2]).resourceMetrics?.[0]?.scopeMetrics?.[0]?.metrics ?? []),
              {
                name: "h",
                data: {
                  case: "histogram",
                  value: {
                    dataPoints: [
                      {
                        timeUnixNano: T,
                        count: 2n,
                        sum: 3,
                        explicitBounds: [1],
                        bucketCounts: [1n, 1n],
                      },
                    ],
                  },
                },
              },
              {
                name: "e",
                data: {
                  case: "exponentialHistogram",
                  value: {
                    dataPoints: [
                      {
                        timeUnixNano: T,
                        count: 1n,
                        scale: 2,
                        positive: { offset: 1, bucketCounts: [1n] },
                      },
                    ],
                  },
                },
              },
              {
                name: "q",
                data: {
                  case: "summary",
                  value: {
                    dataPoints: [
                      {
                        timeUnixNano: T,
                        count: 1n,
                        sum: 2,
                        quantileValues: [{ quantile: 0.5, value: 2 }],
                      },
                    ],
                  },
                },
              },
            ],
          },
        ],
      },
    ],
  });

  it("answers mutations of a valid protobuf request below 500", async () => {
    expect(await answer(VALID, TYPES[0], false)).toBe(200);
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            fc.nat(),
            fc.integer({ min: 0, max: 255 }),
            fc.constantFrom("set", "insert", "delete"),
          ),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        fc.boolean(),
        async (mutations, gzip) => {
          const bytes = [...VALID];
          for (const [at, byte, how] of mutations) {
            const i = at % (bytes.length + 1);
            if (how === "set") bytes[i] = byte;
            else if (how === "insert") bytes.splice(i, 0, byte);
            else bytes.splice(i, 1);
          }
          await answer(Uint8Array.from(bytes), TYPES[0], gzip);
        },
      ),
      RUNS,
    );
  });

  it("answers a valid JSON request with any JSON value put anywhere in it below 500", async () => {
    const valid = JSON.stringify(EXPORTER_JSON);
    expect(await answer(Buffer.from(valid), TYPES[1], false)).toBe(200);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat()), fc.jsonValue({ maxDepth: 3 }), async (path, value) => {
        const json = JSON.parse(valid) as unknown;
        await answer(Buffer.from(JSON.stringify(replaceAt(json, path, value))), TYPES[1], false);
      }),
      RUNS,
    );
  });

  it("refuses, without copying them for each point, a resource's attributes over the tag limit", async () => {
    // 20,000 resource attributes and 10,000 points: 200 million tags if each point got a copy.
    const attributes = Array.from({ length: 20_000 }, (_, i) => ({
      key: `k${i}`,
      value: { value: { case: "stringValue" as const, value: "v" } },
    }));
    const request = gaugeRequest(Array.from({ length: 10_000 }, () => 1));
    const resourceMetrics = request.resourceMetrics?.[0];
    if (resourceMetrics) resourceMetrics.resource = { attributes };
    const { handler } = otlp();
    const res = await handler(post(encode(request), PROTOBUF));
    expect(res.status).toBe(400);
    expect((await statusOf(res)).message).toContain(
      "has 20000 tags or more from its resource and scope alone; the limit is 64",
    );
  }, 10_000);

  it("answers values nested far deeper than any limit below 500", async () => {
    // ~840 KiB of JSON: within the body limit.
    const depth = 30_000;
    const json = `{"resourceMetrics":[{"resource":{"attributes":[{"key":"k","value":${'{"arrayValue":{"values":['.repeat(depth)}${"]}}".repeat(depth)}}]}}]}`;
    expect(await answer(Buffer.from(json), TYPES[1], false)).toBe(400);
    const value = nestedArrayValue(depth);
    const keyValue = Uint8Array.from([0x12, ...varint(value.length), ...value]); // KeyValue.value
    const resource = Uint8Array.from([0x0a, ...varint(keyValue.length), ...keyValue]);
    const resourceMetrics = Uint8Array.from([0x0a, ...varint(resource.length), ...resource]);
    const body = Uint8Array.from([0x0a, ...varint(resourceMetrics.length), ...resourceMetrics]);
    expect(await answer(body, TYPES[0], false)).toBe(400);
  });
});

/** `root` with the value at `path` (indexes into the keys of each level) replaced by `value`. */
function replaceAt(root: unknown, path: readonly number[], value: unknown): unknown {
  if (path.length === 0 || typeof root !== "object" || root === null) return value;
  const keys = Object.keys(root);
  if (keys.length === 0) return value;
  const key = keys[(path[0] ?? 0) % keys.length] as string;
  const copy = (Array.isArray(root) ? [...(root as unknown[])] : { ...root }) as Record<
    string,
    unknown
  >;
  copy[key] = replaceAt(copy[key], path.slice(1), value);
  return copy;
}

/** An AnyValue holding an array holding an AnyValue... `depth` times, in protobuf. */
function nestedArrayValue(depth: number): Uint8Array {
  // Each level's length depends on the levels inside it: work outwards, then write inwards.
  const headers: number[][] = [];
  let length = 0;
  for (let i = 0; i < depth; i++) {
    const array = [0x0a, ...varint(length)]; // ArrayValue.values
    const arrayLength = array.length + length;
    const any = [0x2a, ...varint(arrayLength)]; // AnyValue.array_value
    length = any.length + arrayLength;
    headers.push([...any, ...array]);
  }
  return Uint8Array.from(headers.reverse().flat());
}

function varint(n: number): number[] {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return bytes;
}
