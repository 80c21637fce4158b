import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { createAuthenticator, type AuthOptions } from "../../edge/http/auth.ts";
import { decodeEnvelope, type Envelope } from "../../shared/envelope.ts";
import { ApiError, ERRORS, type ErrorCode } from "../../edge/http/errors.ts";
import { createIngestHandler } from "../../edge/json/ingest-handler.ts";
import { METRIC_BOUNDS, REQUEST_LIMITS } from "../../shared/limits.ts";
import type { OutgoingMessage, PublishReceipt, Publisher } from "../../edge/publish/publisher.ts";
import { validateEnvelopeV2 } from "../../shared/validators.ts";
import { silentLogger } from "../helpers/logger.ts";
import { post, type ErrorBody } from "../helpers/requests.ts";

const NOW = 1_714_566_896_789;
const SUBJECT = "metrics.json";
const SEED_BODY = '{"data": {"value": 123.45}}';
const RECEIPT: PublishReceipt = { stream: "METRICS", seq: 7, duplicate: false };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type Publish = (message: OutgoingMessage) => Promise<PublishReceipt>;

interface Setup {
  /** What the fake publisher does; by default it acknowledges with RECEIPT. */
  readonly publish?: Publish;
  readonly auth?: Partial<AuthOptions>;
  /** The broker's max_payload as the fake publisher reports it; 1 MiB by default. */
  readonly maxMessageBytes?: () => Promise<number>;
}

/** The handler under test, wired to a fake publisher that records every message it was given. */
function ingest(setup: Setup = {}) {
  const published: OutgoingMessage[] = [];
  const publisher: Publisher = {
    maxMessageBytes: setup.maxMessageBytes ?? (() => Promise.resolve(1024 * 1024)),
    publish(message) {
      published.push(message);
      return setup.publish ? setup.publish(message) : Promise.resolve(RECEIPT);
    },
  };
  let ids = 0;
  const handler = createIngestHandler({
    publisher,
    authenticate: createAuthenticator({
      apiKeys: [],
      authMode: undefined,
      isLocal: true,
      scope: "json",
      ...setup.auth,
    }),
    subject: SUBJECT,
    logger: silentLogger,
    now: () => NOW,
    newMessageId: () => `generated-${++ids}`,
  });
  return { handler, published };
}

interface Receipt {
  status: string;
  accepted: number;
  id: string;
  duplicate: boolean;
  stream: string;
  seq: number;
}

async function errorBody(res: Response): Promise<ErrorBody> {
  return (await res.json()) as ErrorBody;
}

/** The one message published, decoded and validated again as the worker would. */
function envelopeOf(message: OutgoingMessage | undefined): Envelope {
  if (!message) throw new Error("nothing was published");
  const decoded = decodeEnvelope(message.data);
  if (!decoded.ok) throw new Error(`the published envelope does not decode: ${decoded.message}`);
  return decoded.envelope;
}

/** Checks a refusal against the catalogue: status, code, Retry-After, JSON shape. */
async function expectRefusal(res: Response, code: ErrorCode): Promise<ErrorBody> {
  const spec: { status: number; retryAfter?: number } = ERRORS[code];
  const body = await errorBody(res);
  expect(body.error.code).toBe(code);
  expect(res.status).toBe(spec.status);
  expect(body.status).toBe("error");
  expect(typeof body.error.message).toBe("string");
  expect(body.requestId).toBe(res.headers.get("x-request-id"));
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(res.headers.get("retry-after")).toBe(
    spec.retryAfter === undefined ? null : String(spec.retryAfter),
  );
  return body;
}

/** A publish that fails with `err`; the one test of a thrown non-Error passes a string. */
const failWith =
  (err: unknown): Publish =>
  () =>
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    Promise.reject(err);

/** `n` valid metrics as a JSON body. */
const batchOf = (n: number) =>
  JSON.stringify({ data: Array.from({ length: n }, (_, i) => ({ value: i })) });

/** One metric of about 68 KB, every field within its own bounds. */
const hugeMetric = JSON.stringify({
  data: {
    value: 1,
    ...Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`f${i}`, "x".repeat(4000)])),
  },
});

interface Scenario {
  readonly request: () => Request;
  readonly setup?: Setup;
}

/**
 * One request for each error code the ingest handler can answer with. Typed against the
 * catalogue, so a new code fails to compile until it has a scenario here. `configuration_error`
 * comes from the function's setup (function-runtime.ts), never from the handler.
 */
const scenarios = {
  malformed_body: { request: () => post('{"data": {"value": 1,}}') },
  invalid_body: { request: () => post('{"data": null}') },
  invalid_metrics: { request: () => post('{"data": [{"value": 1}, {"value": "high"}]}') },
  empty_batch: { request: () => post('{"data": []}') },
  invalid_idempotency_key: {
    request: () => post(SEED_BODY, { "idempotency-key": "has space" }),
  },
  unauthorized: {
    request: () => post(SEED_BODY, { authorization: "Bearer wrong" }),
    setup: { auth: { apiKeys: ["right"] } },
  },
  insufficient_scope: {
    request: () => post(SEED_BODY, { authorization: "Bearer influx-only-key-123" }),
    setup: { auth: { apiKeys: ["influx-only-key-123@influx"] } },
  },
  host_not_allowed: {
    // Local development without keys: a page that rebound its own name to 127.0.0.1.
    request: () => post(SEED_BODY, { host: "attacker.example:8080" }),
  },
  origin_not_allowed: {
    request: () => post(SEED_BODY, { origin: "https://attacker.example" }),
  },
  method_not_allowed: {
    request: () => new Request("http://localhost/api/v1/metrics", { method: "GET" }),
  },
  body_too_large: { request: () => post("x".repeat(REQUEST_LIMITS.bodyBytes + 1)) },
  metric_too_large: { request: () => post(hugeMetric) },
  too_many_metrics: { request: () => post(batchOf(REQUEST_LIMITS.metricsPerRequest + 1)) },
  unsupported_media_type: { request: () => post(SEED_BODY, { "content-type": "text/plain" }) },
  unsupported_encoding: { request: () => post(SEED_BODY, { "content-encoding": "br" }) },
  nats_unavailable: {
    request: () => post(SEED_BODY),
    setup: { publish: failWith(new ApiError("nats_unavailable", "The broker cannot be reached.")) },
  },
  publish_timeout: {
    request: () => post(SEED_BODY),
    setup: { publish: failWith(new ApiError("publish_timeout", "No ack in time.")) },
  },
  stream_full: {
    request: () => post(SEED_BODY),
    setup: { publish: failWith(new ApiError("stream_full", "The stream is full.")) },
  },
  storage_full: {
    request: () => post(SEED_BODY),
    setup: { publish: failWith(new ApiError("storage_full", "The disk is full.")) },
  },
  stream_unavailable: {
    request: () => post(SEED_BODY),
    setup: { publish: failWith(new ApiError("stream_unavailable", "No stream.")) },
  },
  auth_not_configured: {
    request: () => post(SEED_BODY),
    setup: { auth: { isLocal: false } },
  },
  internal_error: {
    request: () => post(SEED_BODY),
    setup: { publish: failWith(new Error("boom")) },
  },
} satisfies Record<
  // configuration_error comes from the functions' setup, not_found from the server's router,
  // the expansion bounds from the agent protocols (a JSON body's metrics are the body), and
  // the query codes from the read endpoints (test/unit/query-handlers.test.ts).
  Exclude<
    ErrorCode,
    | "configuration_error"
    | "not_found"
    | "expansion_over_ratio"
    | "expansion_over_limit"
    | "invalid_query"
    | "query_too_large"
    | "query_unavailable"
  >,
  Scenario
>;

const publishedBeforeFailing = new Set<ErrorCode>([
  "nats_unavailable",
  "publish_timeout",
  "stream_full",
  "storage_full",
  "stream_unavailable",
  "internal_error",
]);

describe("the error catalogue", () => {
  it("uses only the statuses of the contract, and Retry-After on every 503 and nowhere else", () => {
    const specs: [string, { status: number; retryAfter?: number }][] = Object.entries(ERRORS);
    // 404 is the self-hosted server's answer to a path it does not serve; 403 refuses a key's
    // scope or a request's source.
    expect(new Set(specs.map(([, s]) => s.status))).toEqual(
      new Set([400, 401, 403, 404, 405, 413, 415, 500, 503]),
    );
    for (const [code, spec] of specs) {
      expect(spec.retryAfter !== undefined, code).toBe(spec.status === 503);
      if (spec.retryAfter !== undefined) expect(spec.retryAfter, code).toBeGreaterThan(0);
    }
  });

  it("gives every ApiError the status of its code", () => {
    for (const code of Object.keys(ERRORS) as ErrorCode[]) {
      expect(new ApiError(code, "m").status).toBe(ERRORS[code].status);
    }
  });
});

describe("every error code the handler answers with", () => {
  it.each(Object.entries(scenarios) as [ErrorCode, Scenario][])(
    "%s: its status and headers, and nothing published",
    async (code, scenario) => {
      const { handler, published } = ingest(scenario.setup);
      await expectRefusal(await handler(scenario.request()), code);
      expect(published).toHaveLength(publishedBeforeFailing.has(code) ? 1 : 0);
    },
  );
});

describe("an accepted request", () => {
  it("answers the seed's request with 202 and a receipt", async () => {
    const { handler, published } = ingest();
    const res = await handler(post(SEED_BODY));
    expect(res.status).toBe(202);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect((await res.json()) as Receipt).toEqual({
      status: "ok",
      accepted: 1,
      id: "generated-1",
      duplicate: false,
      stream: "METRICS",
      seq: 7,
    });
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({ subject: SUBJECT, msgId: "generated-1", headers: {} });
  });

  it("publishes a versioned envelope that decodes, re-validates and holds the metrics as sent", async () => {
    const sent =
      '{"data": [{"value": 1.5, "name": "cpu", "tags": {"host": "a"}, "timestamp": "2024-05-01T12:34:56.123456789+02:00"}, {"value": -2, "timestamp": 1714566896000, "unit": "ms", "extra": {"list": [1, "two", null, true]}}, {"value": 3, "__proto__": {"polluted": "yes"}}]}';
    const { handler, published } = ingest();
    expect((await handler(post(sent))).status).toBe(202);

    const written = JSON.parse(new TextDecoder().decode(published[0]?.data)) as unknown;
    expect(validateEnvelopeV2(written)).toBe(true);
    expect(Object.keys(written as object)).toEqual(["v", "id", "receivedAt", "key", "metrics"]);
    expect((written as { v: number }).v).toBe(2);
    // The metrics' text as the body held it, whitespace and all: not written again.
    const elements = sent.slice(sent.indexOf("[") + 1, sent.lastIndexOf("]"));
    expect(new TextDecoder().decode(published[0]?.data)).toContain(`"metrics":[${elements}]}`);
    const envelope = envelopeOf(published[0]);
    expect(envelope.key).toBe("message");
    expect(envelope.id).toBe("generated-1");
    expect(envelope.receivedAt).toBe(NOW);
    const expected = (JSON.parse(sent) as { data: unknown }).data;
    expect(JSON.stringify(envelope.metrics)).toBe(JSON.stringify(expected));
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });

  it("accepts NDJSON and gzip bodies, publishing the same metrics", async () => {
    const lines = '{"value": 1}\r\n\r\n{"value": 2, "name": "b"}\n';
    const { handler, published } = ingest();
    const ndjson = { "content-type": "application/x-ndjson" };
    expect((await handler(post(lines, ndjson))).status).toBe(202);
    const gzip = { ...ndjson, "content-encoding": "gzip" };
    expect((await handler(post(gzipSync(lines), gzip))).status).toBe(202);

    for (const message of published) {
      expect(envelopeOf(message).metrics).toEqual([{ value: 1 }, { value: 2, name: "b" }]);
    }
    expect(published.map((m) => m.msgId)).toEqual(["generated-1", "generated-2"]);
  });

  it("counts every metric of a batch", async () => {
    const { handler } = ingest();
    const res = await handler(post(batchOf(REQUEST_LIMITS.metricsPerRequest)));
    expect(res.status).toBe(202);
    expect(((await res.json()) as Receipt).accepted).toBe(REQUEST_LIMITS.metricsPerRequest);
  });

  it("answers only once the publish is acknowledged", async () => {
    let acknowledge: (receipt: PublishReceipt) => void = () => undefined;
    const pending = new Promise<PublishReceipt>((resolve) => (acknowledge = resolve));
    const { handler } = ingest({ publish: () => pending });

    let answered = false;
    const response = handler(post(SEED_BODY)).then((res) => {
      answered = true;
      return res;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(answered).toBe(false);

    acknowledge(RECEIPT);
    expect((await response).status).toBe(202);
  });

  it("accepts a request with the right API key", async () => {
    const { handler, published } = ingest({ auth: { apiKeys: ["right"], isLocal: false } });
    const res = await handler(post(SEED_BODY, { authorization: "Bearer right" }));
    expect(res.status).toBe(202);
    expect(published).toHaveLength(1);
  });
});

describe("the 64 KiB limit of one metric", () => {
  /** A valid metric of exactly `bytes` as its own JSON: extra fields of up to 4,000 characters. */
  const metricOfBytes = (bytes: number, tags?: Record<string, string>) => {
    const metric: Record<string, unknown> = { value: 1, ...(tags === undefined ? {} : { tags }) };
    for (let i = 0; Buffer.byteLength(JSON.stringify(metric)) < bytes; i++) {
      const missing = bytes - Buffer.byteLength(JSON.stringify(metric));
      // `,"fN":""` costs the key's length and 6 more.
      metric[`f${i}`] = "x".repeat(Math.min(4000, Math.max(0, missing - `f${i}`.length - 6)));
    }
    return metric;
  };
  /** Tags long enough that consecutive metrics share them in one group of the message. */
  const sharedTags = { host: "h".repeat(60), region: "r".repeat(60) };
  const limit = REQUEST_LIMITS.metricBytes;

  it.each([
    ["alone", undefined],
    // Written without its tags in the message: only the metric's own JSON is over the limit.
    ["sharing its tags with its neighbour", sharedTags],
  ])(
    "refuses one metric a byte over it (%s) with 413 metric_too_large naming it, publishing nothing",
    async (_, tags) => {
      const big = metricOfBytes(limit + 1, tags);
      expect(Buffer.byteLength(JSON.stringify(big))).toBe(limit + 1);
      const { handler, published } = ingest();
      const body = JSON.stringify({ data: [{ value: 0, ...(tags && { tags }) }, big] });
      const refusal = await expectRefusal(await handler(post(body)), "metric_too_large");
      expect(refusal.error.message).toBe(
        `Metric 1 is ${limit + 1} bytes; the limit is ${limit} bytes.`,
      );
      expect(published).toHaveLength(0);
    },
  );

  it("accepts metrics of exactly the limit, with and without shared tags", async () => {
    for (const tags of [undefined, sharedTags]) {
      const metric = metricOfBytes(limit, tags);
      expect(Buffer.byteLength(JSON.stringify(metric))).toBe(limit);
      const { handler, published } = ingest();
      const res = await handler(post(JSON.stringify({ data: [metric, metric] })));
      expect(res.status).toBe(202);
      expect(envelopeOf(published[0]).metrics).toEqual([metric, metric]);
    }
  });

  /**
   * A metric of the known fields alone, of exactly `bytes` as its own JSON: tags of control
   * characters, which JSON writes as six bytes each (`\u0001`), then plain ones.
   */
  const taggedMetricOfBytes = (bytes: number) => {
    const tags: Record<string, string> = {};
    const metric = { name: "m", value: 1, tags };
    for (let i = 0; Buffer.byteLength(JSON.stringify(metric)) < bytes; i++) {
      const missing = bytes - Buffer.byteLength(JSON.stringify(metric));
      // `"kN":""` costs the key's length and 5 more, and a comma before all but the first.
      const room = missing - `k${i}`.length - (i === 0 ? 5 : 6);
      const length = METRIC_BOUNDS.tagValueLength;
      const controls = Math.min(length, Math.floor(room / 6));
      tags[`k${i}`] =
        "\u0001".repeat(controls) + "x".repeat(Math.min(length - controls, room - 6 * controls));
    }
    return metric;
  };

  it("weighs a metric of tags alone as its JSON: control characters take six bytes each", async () => {
    const atLimit = taggedMetricOfBytes(limit);
    const over = taggedMetricOfBytes(limit + 1);
    expect(Buffer.byteLength(JSON.stringify(atLimit))).toBe(limit);
    expect(Buffer.byteLength(JSON.stringify(over))).toBe(limit + 1);
    expect(Object.keys(over.tags).length).toBeLessThanOrEqual(METRIC_BOUNDS.tagCount);

    const { handler, published } = ingest();
    expect((await handler(post(JSON.stringify({ data: [atLimit] })))).status).toBe(202);
    expect(envelopeOf(published[0]).metrics).toEqual([atLimit]);
    const refusal = await expectRefusal(
      await handler(post(JSON.stringify({ data: [{ value: 0 }, over] }))),
      "metric_too_large",
    );
    expect(refusal.error.message).toBe(
      `Metric 1 is ${limit + 1} bytes; the limit is ${limit} bytes.`,
    );
    expect(published).toHaveLength(1);
  });
});

describe("Idempotency-Key", () => {
  it("becomes the message id, the envelope id and the receipt id", async () => {
    const { handler, published } = ingest();
    const res = await handler(post(SEED_BODY, { "idempotency-key": "order-42" }));
    expect(((await res.json()) as Receipt).id).toBe("order-42");
    expect(published[0]?.msgId).toBe("order-42");
    expect(envelopeOf(published[0]).id).toBe("order-42");
  });

  it("may be 128 visible ASCII characters", async () => {
    const key = "!~".repeat(REQUEST_LIMITS.idempotencyKeyLength / 2);
    const { handler, published } = ingest();
    expect((await handler(post(SEED_BODY, { "idempotency-key": key }))).status).toBe(202);
    expect(published[0]?.msgId).toBe(key);
  });

  it.each([
    ["empty", ""],
    ["129 characters", "k".repeat(REQUEST_LIMITS.idempotencyKeyLength + 1)],
    ["a space inside", "order 42"],
    ["a tab inside", "order\t42"],
    ["a non-ASCII character", "ordér-42"],
  ])("is refused with 400 when %s, and nothing is published", async (_, key) => {
    const { handler, published } = ingest();
    const body = await expectRefusal(
      await handler(post(SEED_BODY, { "idempotency-key": key })),
      "invalid_idempotency_key",
    );
    expect(body.error.message).toContain("128");
    expect(published).toHaveLength(0);
  });

  it("passes duplicate: true through when the stream already had the message", async () => {
    const { handler } = ingest({
      publish: () => Promise.resolve({ stream: "METRICS", seq: 3, duplicate: true }),
    });
    const res = await handler(post(SEED_BODY, { "idempotency-key": "order-42" }));
    expect(res.status).toBe(202);
    expect((await res.json()) as Receipt).toMatchObject({
      duplicate: true,
      seq: 3,
      id: "order-42",
    });
  });
});

describe("refusals", () => {
  it.each(["GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"])(
    "answers %s with 405 and Allow: POST",
    async (method) => {
      const { handler, published } = ingest();
      const res = await handler(new Request("http://localhost/api/v1/metrics", { method }));
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("POST");
      expect(published).toHaveLength(0);
    },
  );

  it.each([
    ["no Authorization header", {}],
    ["a wrong key", { authorization: "Bearer wrong" }],
    ["another scheme", { authorization: "Basic cmlnaHQ=" }],
  ])("answers %s with 401 and WWW-Authenticate: Bearer", async (_, headers) => {
    const { handler, published } = ingest({ auth: { apiKeys: ["right"] } });
    const res = await handler(post(SEED_BODY, headers));
    await expectRefusal(res, "unauthorized");
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer\b/);
    expect(published).toHaveLength(0);
  });

  it("answers 503 auth_not_configured outside local development without keys", async () => {
    const { handler, published } = ingest({ auth: { isLocal: false } });
    const body = await expectRefusal(await handler(post(SEED_BODY)), "auth_not_configured");
    expect(body.error.message).toContain("INGEST_API_KEYS");
    expect(published).toHaveLength(0);
  });

  it.each([
    [
      "a body over 1 MiB",
      () => post(`{"data": {"value": 1, "x": "${"x".repeat(REQUEST_LIMITS.bodyBytes)}"}}`),
      "body_too_large",
    ],
    [
      "a declared Content-Length over 1 MiB",
      () => post(SEED_BODY, { "content-length": String(REQUEST_LIMITS.bodyBytes + 1) }),
      "body_too_large",
    ],
    [
      "a gzip body inflating past 1 MiB",
      () =>
        post(gzipSync(" ".repeat(REQUEST_LIMITS.bodyBytes + 1)), { "content-encoding": "gzip" }),
      "body_too_large",
    ],
    ["one metric over 64 KiB", () => post(hugeMetric), "metric_too_large"],
    [
      "10,001 metrics",
      () => post(batchOf(REQUEST_LIMITS.metricsPerRequest + 1)),
      "too_many_metrics",
    ],
  ] as const)("answers %s with 413", async (_, request, code) => {
    const { handler, published } = ingest();
    await expectRefusal(await handler(request()), code);
    expect(published).toHaveLength(0);
  });

  it("answers 413 when the broker refuses the message as too large", async () => {
    const { handler } = ingest({
      publish: failWith(new ApiError("body_too_large", "The broker accepts at most 1048576.")),
    });
    await expectRefusal(await handler(post(SEED_BODY)), "body_too_large");
  });

  it("answers a body without Content-Type with 415", async () => {
    const { handler, published } = ingest();
    const bytes = new TextEncoder().encode(SEED_BODY);
    const req = new Request("http://localhost/api/v1/metrics", { method: "POST", body: bytes });
    expect(req.headers.get("content-type")).toBeNull();
    await expectRefusal(await handler(req), "unsupported_media_type");
    expect(published).toHaveLength(0);
  });

  it.each([
    ["text/plain", { "content-type": "text/plain" }, "unsupported_media_type"],
    [
      "a charset other than UTF-8",
      { "content-type": "application/json; charset=latin1" },
      "unsupported_media_type",
    ],
    ["Content-Encoding: br", { "content-encoding": "br" }, "unsupported_encoding"],
    ["Content-Encoding: deflate", { "content-encoding": "deflate" }, "unsupported_encoding"],
  ] as const)("answers %s with 415", async (_, headers, code) => {
    const { handler, published } = ingest();
    await expectRefusal(await handler(post(SEED_BODY, headers)), code);
    expect(published).toHaveLength(0);
  });

  it.each([
    ["malformed JSON", '{"data": ', "malformed_body"],
    ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0x7d]), "malformed_body"],
    ["a body of the wrong shape", '{"data": {"value": 1}, "extra": 1}', "invalid_body"],
    ["an empty body", "", "empty_batch"],
    [
      "one invalid metric among valid ones",
      '{"data": [{"value": 1}, {"value": null}]}',
      "invalid_metrics",
    ],
  ] as const)("answers %s with 400 and publishes nothing", async (_, body, code) => {
    const { handler, published } = ingest();
    await expectRefusal(await handler(post(body)), code);
    expect(published).toHaveLength(0);
  });

  it("lists every bad metric and field of an invalid request", async () => {
    const { handler } = ingest();
    const body = await expectRefusal(
      await handler(post('{"data": [{"value": "1"}, {"value": 2}, {"name": ""}]}')),
      "invalid_metrics",
    );
    expect(body.error.details?.map(({ index, path }) => `${index}${path}`)).toEqual([
      "0/value",
      "2",
      "2/name",
    ]);
  });

  it.each([
    ["nats_unavailable", "2"],
    ["publish_timeout", "2"],
    ["stream_full", "10"],
    ["storage_full", "30"],
    ["stream_unavailable", "5"],
  ] as const)("answers a publisher's %s with 503 and Retry-After %s", async (code, seconds) => {
    const { handler } = ingest({ publish: failWith(new ApiError(code, "The broker said no.")) });
    const res = await handler(post(SEED_BODY));
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe(seconds);
    expect((await errorBody(res)).error.code).toBe(code);
  });
});

describe("an unexpected error", () => {
  const secret = "password=hunter2 at /srv/app/db.ts:42";

  it.each([
    ["an Error", new TypeError(secret)],
    ["a thrown string", secret],
  ])("thrown as %s answers an opaque 500 holding only a request id", async (_, thrown) => {
    const { handler } = ingest({ publish: failWith(thrown) });
    const res = await handler(post(SEED_BODY, { "x-request-id": "req-500" }));
    const text = await res.text();

    expect(res.status).toBe(500);
    expect(JSON.parse(text)).toEqual({
      status: "error",
      error: {
        code: "internal_error",
        message: "An internal error occurred; quote request id req-500.",
      },
      requestId: "req-500",
    });
    for (const leak of ["hunter2", "password", "db.ts", "TypeError", "    at "]) {
      expect(text).not.toContain(leak);
    }
  });
});

describe("X-Request-Id", () => {
  it("is kept when well-formed, in the header and in an error body", async () => {
    const { handler } = ingest();
    const id = "req_1.2:3-ABC";
    const ok = await handler(post(SEED_BODY, { "x-request-id": id }));
    expect(ok.headers.get("x-request-id")).toBe(id);
    const refused = await handler(post("{", { "x-request-id": id }));
    expect(refused.headers.get("x-request-id")).toBe(id);
    expect((await errorBody(refused)).requestId).toBe(id);
  });

  it.each([
    ["spaces", "my request"],
    ["markup", "<script>"],
    ["129 characters", "r".repeat(129)],
    ["a slash", "a/b"],
  ])("is replaced by a new one when it holds %s", async (_, incoming) => {
    const { handler } = ingest();
    const res = await handler(post("{", { "x-request-id": incoming }));
    const id = res.headers.get("x-request-id");
    expect(id).not.toBe(incoming);
    expect(id).toMatch(UUID);
    expect((await errorBody(res)).requestId).toBe(id);
  });

  it("is made when the request has none", async () => {
    const { handler } = ingest();
    const res = await handler(post(SEED_BODY));
    expect(res.headers.get("x-request-id")).toMatch(UUID);
  });
});

describe("traceparent", () => {
  const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

  it("is forwarded in the published headers when well-formed", async () => {
    const { handler, published } = ingest();
    await handler(post(SEED_BODY, { traceparent: valid }));
    expect(published[0]?.headers).toEqual({ traceparent: valid });
  });

  it.each([
    ["upper-case hex", valid.toUpperCase()],
    ["a short trace id", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"],
    ["no flags", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"],
    ["something else", "hello"],
  ])("is not forwarded with %s", async (_, traceparent) => {
    const { handler, published } = ingest();
    expect((await handler(post(SEED_BODY, { traceparent }))).status).toBe(202);
    expect(published[0]?.headers).toEqual({});
  });
});

describe("the body limit learned from the broker", () => {
  it("refuses a body larger than the broker's max_payload less the envelope, publishing nothing", async () => {
    const { handler, published } = ingest({ maxMessageBytes: () => Promise.resolve(4096) });
    const big = JSON.stringify({ data: { value: 1, note: "x".repeat(4000) } });
    const res = await handler(post(big));
    expect(res.status).toBe(413);
    expect(((await res.json()) as ErrorBody).error.code).toBe("body_too_large");
    expect(published).toHaveLength(0);

    const fits = JSON.stringify({ data: { value: 1, note: "x".repeat(3000) } });
    expect((await handler(post(fits))).status).toBe(202);
  });

  it("never goes above its own limit, however large the broker's messages", async () => {
    const { handler, published } = ingest({
      maxMessageBytes: () => Promise.resolve(64 * 1024 * 1024),
    });
    const over = JSON.stringify({
      data: Array.from({ length: 20 }, () => ({ value: 1, note: "x".repeat(60_000) })),
    });
    expect(over.length).toBeGreaterThan(REQUEST_LIMITS.bodyBytes);
    const res = await handler(post(over));
    expect(res.status).toBe(413);
    expect(published).toHaveLength(0);
  });

  it("answers 503 when the broker cannot be asked, before reading the body", async () => {
    const { handler, published } = ingest({
      maxMessageBytes: () => Promise.reject(new ApiError("nats_unavailable", "down")),
    });
    const res = await handler(post(SEED_BODY));
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(published).toHaveLength(0);
  });
});
