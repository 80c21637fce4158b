import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { createAuthenticator } from "../../edge/http/auth.ts";
import { decodeEnvelope } from "../../shared/envelope.ts";
import { createIngestHandler } from "../../edge/json/ingest-handler.ts";
import { REQUEST_LIMITS } from "../../shared/limits.ts";
import { fakePublisher } from "../helpers/fake-publisher.ts";
import { silentLogger } from "../helpers/logger.ts";

/**
 * Input from the internet at its worst. Each case checks the status, the error code, and that
 * nothing was published; the accepted ones check what was published.
 */
function ingest() {
  // A broker whose messages are larger than our own limit, so that the limit at play is ours.
  const publisher = fakePublisher(undefined, 2 * 1024 * 1024);
  const handler = createIngestHandler({
    publisher,
    authenticate: createAuthenticator({
      apiKeys: [],
      authMode: "none",
      isLocal: false,
      scope: "json",
    }),
    subject: "metrics.json",
    logger: silentLogger,
  });
  return { handler, publisher };
}

function request(body: string | Uint8Array, headers: Record<string, string> = {}): Request {
  return new Request("http://localhost/api/v1/metrics", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

/** An NDJSON body of exactly `size` bytes: metrics of about 1 KB, the last one padded. */
function ndjsonOfSize(size: number): string {
  const line = (pad: number) => `${JSON.stringify({ value: 1, pad: "x".repeat(pad) })}\n`;
  const base = line(0).length;
  const lines: string[] = [];
  let total = 0;
  while (size - total > 2000) {
    lines.push(line(1000));
    total += base + 1000;
  }
  lines.push(line(size - total - base));
  const text = lines.join("");
  expect(Buffer.byteLength(text)).toBe(size);
  return text;
}

const deep = (levels: number) =>
  `{"data": {"value": 1, "x": ${"[".repeat(levels)}${"]".repeat(levels)}}}`;

const refusals: [string, () => Request, number, string][] = [
  [
    "invalid UTF-8",
    () => request(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])),
    400,
    "malformed_body",
  ],
  ["malformed JSON", () => request('{"data": {"value": 1,}'), 400, "malformed_body"],
  ["JSON nested 100,000 levels", () => request(deep(100_000)), 400, "invalid_metrics"],
  [
    "a number that overflows to Infinity",
    () => request('{"data": {"value": 1e400}}'),
    400,
    "invalid_metrics",
  ],
  ["a NaN-like string", () => request('{"data": {"value": "NaN"}}'), 400, "invalid_metrics"],
  [
    "Infinity as a bare word",
    () => request('{"data": {"value": Infinity}}'),
    400,
    "malformed_body",
  ],
  [
    "a gzip bomb (a small body inflating past the limit)",
    () => request(gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20)), { "content-encoding": "gzip" }),
    413,
    "body_too_large",
  ],
  [
    "a truncated gzip stream",
    () =>
      request(gzipSync('{"data": {"value": 1}}').subarray(0, 20), { "content-encoding": "gzip" }),
    400,
    "malformed_body",
  ],
  [
    "text/plain",
    () => request('{"data": {"value": 1}}', { "content-type": "text/plain" }),
    415,
    "unsupported_media_type",
  ],
  [
    "no Content-Type",
    () =>
      new Request("http://localhost/api/v1/metrics", {
        method: "POST",
        body: '{"data": {"value": 1}}',
      }),
    415,
    "unsupported_media_type",
  ],
  [
    "a charset other than UTF-8",
    () =>
      request('{"data": {"value": 1}}', { "content-type": "application/json; charset=iso-8859-1" }),
    415,
    "unsupported_media_type",
  ],
  ["an empty body", () => request(""), 400, "empty_batch"],
  [
    "a body one byte over the limit",
    () =>
      request(ndjsonOfSize(REQUEST_LIMITS.bodyBytes + 1), {
        "content-type": "application/x-ndjson",
      }),
    413,
    "body_too_large",
  ],
  [
    "NDJSON with one bad line among good ones",
    () =>
      request('{"value": 1}\n{"value": 2,,}\n{"value": 3}\n', {
        "content-type": "application/x-ndjson",
      }),
    400,
    "malformed_body",
  ],
  [
    "NDJSON with one invalid metric among good ones",
    () =>
      request('{"value": 1}\n{"value": "2"}\n{"value": 3}\n', {
        "content-type": "application/x-ndjson",
      }),
    400,
    "invalid_metrics",
  ],
];

describe("hostile input is refused with its documented status and code, and publishes nothing", () => {
  it.each(refusals)("%s", async (_, make, status, code) => {
    const { handler, publisher } = ingest();
    const res = await handler(make());
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    expect(publisher.published).toHaveLength(0);
  });
});

describe("awkward input that is valid is accepted as it is", () => {
  async function accepted(req: Request) {
    const { handler, publisher } = ingest();
    const res = await handler(req);
    expect(res.status).toBe(202);
    expect(publisher.published).toHaveLength(1);
    const decoded = decodeEnvelope(publisher.published[0]?.data ?? new Uint8Array());
    if (!decoded.ok) throw new Error(decoded.message);
    return decoded.envelope.metrics;
  }

  it("a body exactly at the limit", async () => {
    const metrics = await accepted(
      request(ndjsonOfSize(REQUEST_LIMITS.bodyBytes), { "content-type": "application/x-ndjson" }),
    );
    expect(metrics.length).toBeGreaterThan(1000);
  });

  it("__proto__, constructor and prototype keys at every level, as plain data", async () => {
    const body =
      '{"data": {"value": 1, "__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}},' +
      ' "tags": {"__proto__": "x", "constructor": "y"}, "nested": {"a": [{"__proto__": {"polluted": 1}}]}}}';
    const [metric] = await accepted(request(body));
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty("polluted");
    expect(Object.keys(metric ?? {})).toEqual([
      "value",
      "__proto__",
      "constructor",
      "tags",
      "nested",
    ]);
    expect(Object.keys(metric?.tags ?? {})).toEqual(["__proto__", "constructor"]);
  });

  it("duplicate keys: the last one counts, as JSON.parse reads them (documented)", async () => {
    const [metric] = await accepted(
      request('{"data": {"value": 1, "name": "a", "name": "b", "value": 2}}'),
    );
    expect(metric).toEqual({ value: 2, name: "b" });
  });

  it("an integer beyond 2^53 in value, read as the nearest double (documented)", async () => {
    const [metric] = await accepted(request('{"data": {"value": 9007199254740993}}'));
    expect(metric?.value).toBe(9007199254740992);
  });

  it("oddly cased Content-Type with a charset", async () => {
    await accepted(
      request('{"data": {"value": 1}}', { "content-type": "Application/JSON; Charset=UTF-8" }),
    );
  });
});
