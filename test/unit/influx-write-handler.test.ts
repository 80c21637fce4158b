import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ApiError, ERRORS, type ErrorCode, type ErrorDetail } from "../../edge/http/errors.ts";
import { createInfluxWriteHandler } from "../../edge/influx/influx-write-handler.ts";
import { REQUEST_LIMITS } from "../../shared/limits.ts";
import type { Metric } from "../../shared/metric-schema.ts";
import type { OutgoingMessage } from "../../edge/publish/publisher.ts";
import {
  agentOptions,
  publishedMetrics as allPublished,
  seriesEnvelopeOf,
  type AgentSetup,
} from "../helpers/agent.ts";
import { charactersRead } from "../helpers/string-work.ts";

const NOW = 1_714_566_896_789; // 2024-05-01T12:34:56.789Z
const SUBJECT = "metrics.influx";

function influx(setup: AgentSetup = {}) {
  const { options, published } = agentOptions(SUBJECT, NOW, setup);
  return { handler: createInfluxWriteHandler(options), published };
}

function write(
  body: string | Uint8Array,
  query = "?org=acme&bucket=telegraf",
  headers: Record<string, string> = {},
): Request {
  return new Request(`http://localhost/api/v2/write${query}`, {
    method: "POST",
    body,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

/** Every metric published, in order, from envelopes that decode as the worker decodes them. */
const publishedMetrics = (published: readonly OutgoingMessage[]) =>
  allPublished(published, SUBJECT);
const envelopeOf = (message: OutgoingMessage) => seriesEnvelopeOf(message, SUBJECT);

interface InfluxErrorBody {
  code: string;
  message: string;
  line?: number;
  maxLength?: number;
  status: string;
  error: { code: string; message: string; details?: ErrorDetail[] };
  requestId: string;
}

const INFLUX_CODE: Record<number, string> = {
  400: "invalid",
  401: "unauthorized",
  405: "method not allowed",
  413: "request too large",
  415: "unsupported media type",
  500: "internal error",
  503: "unavailable",
};

/** A refusal in both shapes: InfluxDB's `code`/`message` and the API's error, and nothing kept. */
async function expectRefusal(
  res: Response,
  code: ErrorCode,
  published: readonly OutgoingMessage[],
): Promise<InfluxErrorBody> {
  const spec: { status: number; retryAfter?: number } = ERRORS[code];
  expect(res.status).toBe(spec.status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const body = (await res.json()) as InfluxErrorBody;
  expect(body.code).toBe(INFLUX_CODE[spec.status]);
  expect(body.message).toBe(body.error.message);
  expect(body.status).toBe("error");
  expect(body.error.code).toBe(code);
  expect(body.requestId).toBe(res.headers.get("x-request-id"));
  expect(res.headers.get("retry-after")).toBe(
    spec.retryAfter === undefined ? null : String(spec.retryAfter),
  );
  if (spec.status < 500) expect(published).toEqual([]);
  return body;
}

describe("a write", () => {
  it("answers 204 with no body and publishes one metric per field, exactly", async () => {
    const { handler, published } = influx();
    const body = [
      "# Telegraf-like lines",
      "cpu,host=web-1,cpu=cpu0 usage_idle=98.5,usage_user=1.25 1714566896000000000",
      'system,host=web-1 load1=0.5,n_cpus=4i,uptime=3600u,up=T,uptime_format=" 1:00" 1714566896000000000',
    ].join("\n");
    const res = await handler(write(body, "?org=acme&bucket=telegraf&precision=ns"));
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    expect(res.headers.get("x-request-id")).toBeTruthy();
    expect(published).toHaveLength(1);
    const envelope = envelopeOf(published[0] as OutgoingMessage);
    expect(envelope).toMatchObject({ key: "series", receivedAt: NOW });
    const at = "2024-05-01T12:34:56.000000000Z";
    const cpu = { host: "web-1", cpu: "cpu0" };
    const system = { host: "web-1" };
    const about = (measurement: string, field: string, type: string) => ({
      org: "acme",
      bucket: "telegraf",
      measurement,
      field,
      type,
    });
    expect(envelope.metrics).toEqual([
      {
        name: "cpu_usage_idle",
        value: 98.5,
        timestamp: at,
        tags: cpu,
        influx: about("cpu", "usage_idle", "float"),
      },
      {
        name: "cpu_usage_user",
        value: 1.25,
        timestamp: at,
        tags: cpu,
        influx: about("cpu", "usage_user", "float"),
      },
      {
        name: "system_load1",
        value: 0.5,
        timestamp: at,
        tags: system,
        influx: about("system", "load1", "float"),
      },
      {
        name: "system_n_cpus",
        value: 4,
        timestamp: at,
        tags: system,
        influx: about("system", "n_cpus", "integer"),
      },
      {
        name: "system_uptime",
        value: 3600,
        timestamp: at,
        tags: system,
        influx: about("system", "uptime", "unsigned"),
      },
      {
        name: "system_up",
        value: 1,
        timestamp: at,
        tags: system,
        influx: about("system", "up", "boolean"),
      },
      {
        name: "system_uptime_format",
        value: 1,
        timestamp: at,
        tags: system,
        influx: { ...about("system", "uptime_format", "string"), text: " 1:00" },
      },
    ]);
  });

  it.each([
    ["ns", "1714566896123456789", "2024-05-01T12:34:56.123456789Z"],
    ["us", "1714566896123456", "2024-05-01T12:34:56.123456000Z"],
    ["ms", "1714566896123", "2024-05-01T12:34:56.123000000Z"],
    ["s", "1714566896", "2024-05-01T12:34:56.000000000Z"],
  ])("reads a timestamp at precision %s exactly", async (precision, stamp, timestamp) => {
    const { handler, published } = influx();
    const res = await handler(write(`m f=1 ${stamp}`, `?bucket=b&precision=${precision}`));
    expect(res.status).toBe(204);
    expect(publishedMetrics(published).map((m) => m.timestamp)).toEqual([timestamp]);
  });

  it("reads timestamps as nanoseconds when no precision is given", async () => {
    const { handler, published } = influx();
    expect((await handler(write("m f=1 1714566896123456789", "?bucket=b"))).status).toBe(204);
    expect(publishedMetrics(published)[0]?.timestamp).toBe("2024-05-01T12:34:56.123456789Z");
  });

  it.each([
    ["ns", "2024-05-01T12:34:56.789000000Z"],
    ["ms", "2024-05-01T12:34:56.789000000Z"],
    ["s", "2024-05-01T12:34:56.000000000Z"],
  ])("gives a line without timestamp the receive time at precision %s", async (p, timestamp) => {
    const { handler, published } = influx();
    expect((await handler(write("m f=1", `?bucket=b&precision=${p}`))).status).toBe(204);
    expect(publishedMetrics(published)[0]?.timestamp).toBe(timestamp);
  });

  it("takes gzip", async () => {
    const { handler, published } = influx();
    const res = await handler(
      write(gzipSync("m,t=1 f=2 1714566896000000000"), "?bucket=b", { "content-encoding": "gzip" }),
    );
    expect(res.status).toBe(204);
    expect(publishedMetrics(published).map((m) => [m.name, m.value, m.tags])).toEqual([
      ["m_f", 2, { t: "1" }],
    ]);
  });

  it.each([
    ["org", "?org=acme&bucket=b", { org: "acme", bucket: "b" }],
    ["orgID, when there is no org", "?orgID=0123abcd&bucket=b", { org: "0123abcd", bucket: "b" }],
    ["no org", "?bucket=b", { bucket: "b" }],
    ["an empty org, as Telegraf sends without one", "?org=&bucket=b", { bucket: "b" }],
  ])("keeps %s in each metric", async (_, query, kept) => {
    const { handler, published } = influx();
    expect((await handler(write("m f=1", query))).status).toBe(204);
    const [metric] = publishedMetrics(published) as [Metric & { influx: object }];
    expect(metric.influx).toEqual({ ...kept, measurement: "m", field: "f", type: "float" });
  });

  it("keeps __proto__ and constructor as tag keys like any other", async () => {
    const { handler, published } = influx();
    const res = await handler(write("m,__proto__=x,constructor=y f=1", "?bucket=b"));
    expect(res.status).toBe(204);
    const tags = publishedMetrics(published)[0]?.tags;
    expect(Object.keys(tags ?? {})).toEqual(["__proto__", "constructor"]);
    expect(Object.getPrototypeOf(tags)).toBe(Object.prototype);
  });

  it("publishes a retried batch with the same message id, whenever it is retried", async () => {
    let now = NOW;
    const { handler, published } = influx({ now: () => now });
    const body = "m,h=a f=1 1714566896000000000\nm,h=b f=2 1714566896000000000";
    await handler(write(body, "?bucket=b"));
    now += 60_000;
    await handler(write(body, "?bucket=b"));
    expect(published).toHaveLength(2);
    expect(published[1]?.msgId).toBe(published[0]?.msgId);
    expect(publishedMetrics(published.slice(1))).toEqual(publishedMetrics(published.slice(0, 1)));
  });

  it("gives lines without timestamps, sent again later, another identity (the documented limit)", async () => {
    let now = NOW;
    const { handler, published } = influx({ now: () => now });
    await handler(write("m f=1", "?bucket=b"));
    now += 1;
    await handler(write("m f=1", "?bucket=b"));
    expect(published[1]?.msgId).not.toBe(published[0]?.msgId);
  });

  it("takes exactly the limit of fields, published in as many messages as fit", async () => {
    const { handler, published } = influx();
    const lines = Array.from(
      { length: REQUEST_LIMITS.metricsPerRequest / 2 },
      (_, i) => `m,i=${i} a=1,b=2 1714566896`,
    );
    const res = await handler(write(lines.join("\n"), "?bucket=b&precision=s"));
    expect(res.status).toBe(204);
    expect(published.length).toBeGreaterThan(1);
    expect(publishedMetrics(published)).toHaveLength(REQUEST_LIMITS.metricsPerRequest);
  });
});

describe("authentication", () => {
  const keyed = { auth: { apiKeys: ["secret"], isLocal: false } };

  it.each(["Token secret", "Bearer secret", "token secret", "TOKEN  secret"])(
    "takes %j",
    async (authorization) => {
      const { handler } = influx(keyed);
      expect((await handler(write("m f=1", "?bucket=b", { authorization }))).status).toBe(204);
    },
  );

  it.each([
    ["no key", undefined],
    ["a wrong key", "Token wrong"],
    ["another scheme", "Basic c2VjcmV0"],
    ["a key without a scheme", "secret"],
  ])("refuses %s with 401 and says both schemes", async (_, authorization) => {
    const { handler, published } = influx(keyed);
    const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
    const res = await handler(write("m f=1", "?bucket=b", headers));
    const body = await expectRefusal(res, "unauthorized", published);
    expect(res.headers.get("www-authenticate")).toBe(
      'Token realm="metrics", Bearer realm="metrics"',
    );
    expect(body.message).not.toContain("secret");
  });
});

describe("refusals", () => {
  it("405 for any method but POST, with Allow", async () => {
    const { handler, published } = influx();
    const res = await handler(new Request("http://localhost/api/v2/write?bucket=b"));
    await expectRefusal(res, "method_not_allowed", published);
    expect(res.headers.get("allow")).toBe("POST");
  });

  it("400 naming the first bad line, and nothing written", async () => {
    const { handler, published } = influx();
    const body = "m f=1\nm f=2\n\nm,host f=3\nm f=\n";
    const res = await handler(write(body, "?bucket=b"));
    const refusal = await expectRefusal(res, "malformed_body", published);
    expect(refusal.line).toBe(4);
    expect(refusal.message).toBe(
      `line 4, column 7: expected '=' after the tag key "host"; nothing was written.`,
    );
  });

  it.each([
    ["a name over 256 characters", `${"m".repeat(251)} field=1`, "the metric name"],
    ["a tag value over 256 characters", `m,t=${"v".repeat(257)} f=1`, 'the tag "t"'],
    ["a tag key over 128 characters", `m,${"k".repeat(129)}=v f=1`, "a tag key"],
    [
      "more than 64 tags",
      `m${Array.from({ length: 65 }, (_, i) => `,t${i}=v`).join("")} f=1`,
      "the tag set",
    ],
    ["a string field over 4096 characters", `m s="${"x".repeat(4097)}"`, 'the string field "s"'],
    ["a NUL character in a string field", 'm s="a\u0000b"', 'the string field "s"'],
    ["a timestamp before 1970", "m f=1 -1", "not between 1970 and 9999"],
    ["a timestamp after 9999 (in seconds)", "m f=1 253402300800", "not between 1970 and 9999"],
  ])("400 invalid_metrics for %s, naming the line", async (_, line, says) => {
    const { handler, published } = influx();
    const res = await handler(write(`m f=1\n${line}\nm f=3`, "?bucket=b&precision=s"));
    const body = await expectRefusal(res, "invalid_metrics", published);
    expect(body.line).toBe(2);
    expect(body.message).toMatch(/^line 2: /);
    expect(body.message).toContain(says);
  });

  it("400 malformed_body for a timestamp beyond 64 bits", async () => {
    const { handler, published } = influx();
    const res = await handler(write("m f=1 9223372036854775808", "?bucket=b"));
    const body = await expectRefusal(res, "malformed_body", published);
    expect(body.message).toContain("out of the 64-bit range");
  });

  it("400 with details pointing at the metric, for a field the schema refuses", async () => {
    const { handler, published } = influx();
    const res = await handler(write(`m a=1,b=2\nm,t=${"v".repeat(300)} f=1`, "?bucket=b"));
    const body = await expectRefusal(res, "invalid_metrics", published);
    expect(body.error.details).toEqual([
      { index: 2, path: "/tags/t", message: "must NOT have more than 256 characters" },
    ]);
  });

  it("400 for a control character in a measurement or key", async () => {
    const { handler, published } = influx();
    const res = await handler(write("m f=1\nc\u0000pu f=1", "?bucket=b"));
    const body = await expectRefusal(res, "malformed_body", published);
    expect(body.line).toBe(2);
  });

  it("400 for invalid UTF-8, naming its line", async () => {
    const { handler, published } = influx();
    const bytes = Buffer.concat([
      Buffer.from("m f=1\nm f=2\nm,t="),
      Buffer.from([0xc3, 0x28]),
      Buffer.from(" f=3"),
    ]);
    const body = await expectRefusal(
      await handler(write(bytes, "?bucket=b")),
      "malformed_body",
      published,
    );
    expect(body.line).toBe(3);
    expect(body.message).toBe("line 3: not valid UTF-8; nothing was written.");
  });

  it.each([
    ["an unknown precision", "?bucket=b&precision=h", "precision must be ns, us, ms or s"],
    ["a precision InfluxDB v1 took", "?bucket=b&precision=n", "precision must be"],
    ["a prototype name as precision", "?bucket=b&precision=toString", "precision must be"],
    ["no bucket", "?org=acme", "bucket"],
    ["an empty bucket", "?bucket=", "bucket"],
    ["a bucket with a control character", "?bucket=a%00b", "bucket"],
    ["an org over 256 characters", `?bucket=b&org=${"o".repeat(257)}`, "org"],
  ])("400 for %s", async (_, query, says) => {
    const { handler, published } = influx();
    const body = await expectRefusal(
      await handler(write("m f=1", query)),
      "invalid_body",
      published,
    );
    expect(body.message).toContain(says);
  });

  it.each([
    ["an empty body", ""],
    ["only comments and blank lines", "# nothing\n\n   \n"],
  ])("400 empty_batch for %s", async (_, text) => {
    const { handler, published } = influx();
    await expectRefusal(await handler(write(text, "?bucket=b")), "empty_batch", published);
  });

  it("413 for a body over 1 MiB, with InfluxDB's maxLength", async () => {
    const { handler, published } = influx();
    const text = `m s="${"x".repeat(REQUEST_LIMITS.bodyBytes)}"`;
    const body = await expectRefusal(
      await handler(write(text, "?bucket=b")),
      "body_too_large",
      published,
    );
    expect(body.maxLength).toBe(REQUEST_LIMITS.bodyBytes);
  });

  it("413 for a gzip bomb, inflating no further than the limit", async () => {
    const { handler, published } = influx();
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x61));
    expect(bomb.byteLength).toBeLessThan(128 * 1024);
    const res = await handler(write(bomb, "?bucket=b", { "content-encoding": "gzip" }));
    await expectRefusal(res, "body_too_large", published);
  });

  it("413 for 10,001 points", async () => {
    const { handler, published } = influx();
    const text = Array.from(
      { length: REQUEST_LIMITS.metricsPerRequest + 1 },
      (_, i) => `m,i=${i} f=1`,
    ).join("\n");
    const body = await expectRefusal(
      await handler(write(text, "?bucket=b")),
      "too_many_metrics",
      published,
    );
    expect(body.message).toContain("10001");
  });

  it("413 when the fields of fewer lines are more than 10,000 metrics", async () => {
    const { handler, published } = influx();
    const text = Array.from({ length: 5001 }, (_, i) => `m,i=${i} a=1,b=2`).join("\n");
    await expectRefusal(await handler(write(text, "?bucket=b")), "too_many_metrics", published);
  });

  it("415 for an encoding other than gzip", async () => {
    const { handler, published } = influx();
    const res = await handler(write("m f=1", "?bucket=b", { "content-encoding": "br" }));
    await expectRefusal(res, "unsupported_encoding", published);
  });

  it.each(["nats_unavailable", "publish_timeout", "stream_full", "stream_unavailable"] as const)(
    "503 with Retry-After when the broker fails: %s",
    async (code) => {
      const failure = new ApiError(code, "The broker failed.");
      const { handler, published } = influx({ publish: () => Promise.reject(failure) });
      await expectRefusal(await handler(write("m f=1", "?bucket=b")), code, published);
    },
  );

  it("an opaque 500 for anything unexpected", async () => {
    const { handler, published } = influx({
      publish: () => Promise.reject(new Error("secret internals")),
    });
    const res = await handler(write("m f=1", "?bucket=b"));
    const body = await expectRefusal(res, "internal_error", published);
    expect(body.message).not.toContain("secret internals");
    expect(body.message).toContain(body.requestId);
  });
});

describe("hostile input", () => {
  it.each([
    ["a 1 MiB measurement", `${"m".repeat(REQUEST_LIMITS.bodyBytes - 8)} f=1`],
    ["a 1 MiB tag value", `m,t=${"v".repeat(REQUEST_LIMITS.bodyBytes - 10)} f=1`],
    ["1 MiB of backslashes", "\\".repeat(REQUEST_LIMITS.bodyBytes)],
    ["1 MiB of one integer", `m f=${"9".repeat(REQUEST_LIMITS.bodyBytes - 6)}i`],
    ["1 MiB of tiny lines", "m f=1\n".repeat(Math.floor(REQUEST_LIMITS.bodyBytes / 6))],
  ])(
    "%s is refused with a 4xx, each character read a few times at most, publishing nothing",
    async (_, text) => {
      const { handler, published } = influx();
      let res: Response | undefined;
      const reads = await charactersRead(async () => {
        res = await handler(write(text, "?bucket=b"));
      });
      // Parsing, checking and refusing read each character about 3 to 7 times; a rescan per line
      // or per token would read ~1e12.
      expect(reads).toBeLessThanOrEqual(16 * text.length);
      if (res === undefined) throw new Error("the handler did not answer");
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(published).toEqual([]);
    },
  );
});

const lineChars = fc.constantFrom(...' ,=\\"#\n\r\tmft.-eiuT0123456789é\u0000'.split(""));
const body = fc.oneof(
  fc.array(lineChars, { maxLength: 120 }).map((chars) => chars.join("")),
  fc.string(),
  fc.uint8Array({ maxLength: 200 }),
  fc.constantFrom("m f=1", 'm,t=a b=T,c="x" 1714566896000000000').map((line) => gzipSync(line)),
);
const query = fc.oneof(
  fc.constant("?bucket=b"),
  fc.constantFrom("ns", "us", "ms", "s", "h", "").map((p) => `?bucket=b&precision=${p}`),
  fc.string().map((s) => `?${new URLSearchParams({ bucket: s, org: s }).toString()}`),
);

describe("property: whatever arrives", () => {
  it("is answered 204 or a documented 4xx, never 5xx, and publishes only with 204", async () => {
    await fc.assert(
      fc.asyncProperty(body, query, fc.boolean(), async (text, q, gzip) => {
        const { handler, published } = influx();
        const headers: Record<string, string> = gzip ? { "content-encoding": "gzip" } : {};
        const res = await handler(write(text, q, headers));
        expect([204, 400, 413, 415]).toContain(res.status);
        if (res.status === 204) {
          expect(publishedMetrics(published).length).toBeGreaterThan(0);
        } else {
          const refusal = (await res.json()) as InfluxErrorBody;
          expect(refusal.code).toBe(INFLUX_CODE[res.status]);
          expect(published).toEqual([]);
        }
      }),
      { numRuns: 1500 },
    );
  });
});
