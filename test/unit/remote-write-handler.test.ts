import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import fc from "fast-check";
import { compress } from "snappyjs";
import { describe, expect, it } from "vitest";
import { ApiError, ERRORS } from "../../edge/http/errors.ts";
import { WriteRequestSchema } from "../../shared/gen/proto/prometheus/remote_pb.js";
import { REQUEST_LIMITS } from "../../shared/limits.ts";
import { createLogger } from "../../shared/logger.ts";
import type { OutgoingMessage } from "../../edge/publish/publisher.ts";
import { createRemoteWriteHandler } from "../../edge/remote-write/remote-write-handler.ts";
import { seriesRowKey } from "../../shared/series-identity.ts";
import {
  agentOptions,
  publishedMetrics as allPublished,
  type AgentSetup,
} from "../helpers/agent.ts";
import { postTo, type ErrorBody } from "../helpers/requests.ts";

type WriteRequestInit = MessageInitShape<typeof WriteRequestSchema>;

const NOW = 1_714_566_999_000;
const T = 1_714_566_896_789n;
const SUBJECT = "metrics.prometheus";
const KEY = "s3cret-key";
/** What Prometheus sends with every remote write request. */
const PROMETHEUS_HEADERS = {
  "content-type": "application/x-protobuf",
  "content-encoding": "snappy",
  "x-prometheus-remote-write-version": "0.1.0",
  "user-agent": "Prometheus/2.42.0",
};

/** The handler with a fake publisher, and the log lines it wrote. */
function remoteWrite(setup: AgentSetup = {}) {
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger("test", "info", {
    write: (line: string) => {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  const { options, published } = agentOptions(SUBJECT, NOW, { ...setup, logger });
  return { handler: createRemoteWriteHandler(options), published, logs };
}

function encode(init: WriteRequestInit): Uint8Array {
  return compress(toBinary(WriteRequestSchema, create(WriteRequestSchema, init)));
}

const post = postTo("/api/v1/write", PROMETHEUS_HEADERS);

function series(labels: Record<string, string>, samples: [number, bigint][]) {
  return {
    labels: Object.entries(labels).map(([name, value]) => ({ name, value })),
    samples: samples.map(([value, timestamp]) => ({ value, timestamp })),
  };
}

/** Every metric the handler published, in order, from the envelopes it handed the publisher. */
const publishedMetrics = (published: readonly OutgoingMessage[]) =>
  allPublished(published, SUBJECT);

async function refused(res: Response, status: number, code: string): Promise<ErrorBody> {
  const body = (await res.json()) as ErrorBody;
  expect([res.status, body.status, body.error.code]).toEqual([status, "error", code]);
  return body;
}

const TWO_SERIES: WriteRequestInit = {
  timeseries: [
    series({ __name__: "worker_metrics_stored_total", instance: "w1", job: "worker" }, [
      [17, T],
      [19, T + 1000n],
    ]),
    series({ __name__: "up", job: "worker" }, [[1, T]]),
  ],
};

describe("POST /api/v1/write", () => {
  it("answers 204 once the samples are published as metrics keyed by series and timestamp", async () => {
    const { handler, published } = remoteWrite();
    const res = await handler(post(encode(TWO_SERIES), { "x-request-id": "req-1" }));
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    expect(res.headers.get("x-request-id")).toBe("req-1");
    expect(publishedMetrics(published)).toEqual([
      {
        name: "worker_metrics_stored_total",
        value: 17,
        timestamp: Number(T),
        tags: { instance: "w1", job: "worker" },
      },
      {
        name: "worker_metrics_stored_total",
        value: 19,
        timestamp: Number(T) + 1000,
        tags: { instance: "w1", job: "worker" },
      },
      { name: "up", value: 1, timestamp: Number(T), tags: { job: "worker" } },
    ]);
  });

  it("publishes a resent batch with the same message ids, so it adds nothing", async () => {
    const { handler, published } = remoteWrite();
    const body = encode(TWO_SERIES);
    expect((await handler(post(body))).status).toBe(204);
    expect((await handler(post(body))).status).toBe(204);
    expect(published).toHaveLength(2);
    expect(published[1]?.msgId).toBe(published[0]?.msgId);
    const keys = publishedMetrics(published).map((m) => seriesRowKey(m, NOW));
    expect(new Set(keys).size).toBe(3);
  });

  it("answers 204 to a request holding only metadata, publishing nothing", async () => {
    const { handler, published, logs } = remoteWrite();
    const res = await handler(
      post(encode({ metadata: [{ metricFamilyName: "up", help: "1 if up" }] })),
    );
    expect(res.status).toBe(204);
    expect(published).toEqual([]);
    expect(logs.find((l) => l["msg"] === "accepted")?.["skipped"]).toMatchObject({ metadata: 1 });
  });

  it("logs what it skipped: staleness markers, NaN and infinite values, histograms, exemplars", async () => {
    const view = new DataView(new ArrayBuffer(8));
    view.setBigUint64(0, 0x7ff0_0000_0000_0002n);
    const { handler, published, logs } = remoteWrite();
    const body = encode({
      timeseries: [
        {
          ...series({ __name__: "g" }, [
            [1, T],
            [view.getFloat64(0), T + 1n],
            [Number.NaN, T + 2n],
            [Number.POSITIVE_INFINITY, T + 3n],
          ]),
          histograms: [{ sum: 1, timestamp: T }],
          exemplars: [{ value: 1, timestamp: T }],
        },
      ],
    });
    expect((await handler(post(body))).status).toBe(204);
    expect(publishedMetrics(published)).toEqual([{ name: "g", value: 1, timestamp: Number(T) }]);
    const accepted = logs.find((l) => l["msg"] === "accepted");
    expect(accepted).toMatchObject({
      points: 5,
      metrics: 1,
      skipped: { staleMarkers: 1, nonFinite: 2, histograms: 1, exemplars: 1, metadata: 0 },
    });
  });

  it("takes 10,000 samples and refuses 10,001 with 413, publishing nothing", async () => {
    const samples = (n: number): [number, bigint][] =>
      Array.from({ length: n }, (_, i) => [i, T + BigInt(i)]);
    const ok = remoteWrite();
    const max = REQUEST_LIMITS.metricsPerRequest;
    const full = await ok.handler(
      post(encode({ timeseries: [series({ __name__: "m" }, samples(max))] })),
    );
    expect(full.status).toBe(204);
    expect(publishedMetrics(ok.published)).toHaveLength(max);

    const over = remoteWrite();
    const res = await over.handler(
      post(
        encode({
          timeseries: [
            series({ __name__: "m" }, samples(max)),
            series({ __name__: "n" }, samples(1)),
          ],
        }),
      ),
    );
    const body = await refused(res, 413, "too_many_metrics");
    expect(body.error.message).toContain("10001 points");
    expect(over.published).toEqual([]);
  });

  it("refuses the whole request with 400 when one sample is invalid, naming it", async () => {
    const { handler, published } = remoteWrite();
    const body = encode({
      timeseries: [
        ...(TWO_SERIES.timeseries ?? []),
        series({ __name__: "x".repeat(257) }, [[1, T]]),
      ],
    });
    const error = (await refused(await handler(post(body)), 400, "invalid_metrics")).error;
    expect(error.details).toEqual([
      {
        index: 3,
        path: "/name",
        message: "timeseries[2].samples[0]: __name__ must NOT have more than 256 characters",
      },
    ]);
    expect(published).toEqual([]);
  });

  it("refuses a method other than POST with 405", async () => {
    const { handler } = remoteWrite();
    const res = await handler(new Request("http://localhost/api/v1/write"));
    await refused(res, 405, "method_not_allowed");
    expect(res.headers.get("allow")).toBe("POST");
  });

  describe("authentication", () => {
    const keyed = { apiKeys: [KEY], isLocal: false };

    it("takes the key as Prometheus's authorization / bearer_token sends it", async () => {
      const { handler, published } = remoteWrite({ auth: keyed });
      const res = await handler(post(encode(TWO_SERIES), { authorization: `Bearer ${KEY}` }));
      expect(res.status).toBe(204);
      expect(published).toHaveLength(1);
    });

    it("refuses a missing or wrong key with 401, publishing nothing", async () => {
      const { handler, published } = remoteWrite({ auth: keyed });
      const missing = await handler(post(encode(TWO_SERIES)));
      await refused(missing, 401, "unauthorized");
      expect(missing.headers.get("www-authenticate")).toContain("Bearer");
      await refused(
        await handler(post(encode(TWO_SERIES), { authorization: "Bearer nope" })),
        401,
        "unauthorized",
      );
      await refused(
        await handler(post(encode(TWO_SERIES), { authorization: `Basic ${KEY}` })),
        401,
        "unauthorized",
      );
      expect(published).toEqual([]);
    });

    it("answers 503 with Retry-After when no key is configured outside local development", async () => {
      const { handler } = remoteWrite({ auth: { apiKeys: [], isLocal: false } });
      const res = await handler(post(encode(TWO_SERIES)));
      await refused(res, 503, "auth_not_configured");
      expect(res.headers.get("retry-after")).toBe("60");
    });
  });

  describe("the protocol's headers", () => {
    it("accepts a proto parameter naming remote write 1.0's message, and no version header", async () => {
      const { handler } = remoteWrite();
      const named = await handler(
        post(encode(TWO_SERIES), {
          "content-type": 'application/x-protobuf; proto="prometheus.WriteRequest"',
        }),
      );
      expect(named.status).toBe(204);
      const request = post(encode(TWO_SERIES));
      request.headers.delete("x-prometheus-remote-write-version");
      expect((await handler(request)).status).toBe(204);
    });

    it("refuses other media types, remote write 2.0 and other versions with 415", async () => {
      const { handler, published } = remoteWrite();
      const cases: [Record<string, string>, string][] = [
        [{ "content-type": "application/json" }, "unsupported_media_type"],
        [{ "content-type": "" }, "unsupported_media_type"],
        [
          { "content-type": "application/x-protobuf;proto=io.prometheus.write.v2.Request" },
          "unsupported_media_type",
        ],
        [{ "x-prometheus-remote-write-version": "2.0.0" }, "unsupported_media_type"],
        [{ "content-encoding": "gzip" }, "unsupported_encoding"],
        [{ "content-encoding": "identity" }, "unsupported_encoding"],
      ];
      for (const [headers, code] of cases) {
        await refused(await handler(post(encode(TWO_SERIES), headers)), 415, code);
      }
      const unencoded = post(encode(TWO_SERIES));
      unencoded.headers.delete("content-encoding");
      await refused(await handler(unencoded), 415, "unsupported_encoding");
      expect(published).toEqual([]);
    });
  });

  describe("hostile bodies", () => {
    it("refuses a Snappy bomb with 413 from its header, publishing nothing", async () => {
      const { handler, published } = remoteWrite();
      const bomb = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x41]);
      const body = await refused(await handler(post(bomb)), 413, "body_too_large");
      expect(body.error.message).toContain("declares 4294967295 bytes");
      // Just over the limit, as a real compressed block of zeros (about 50 KiB on the wire).
      const zeros = compress(new Uint8Array(REQUEST_LIMITS.bodyBytes + 1));
      await refused(await handler(post(zeros)), 413, "body_too_large");
      expect(published).toEqual([]);
    });

    it("refuses a body larger than any valid block with 413, by Content-Length or as it streams", async () => {
      const { handler } = remoteWrite();
      const big = new Uint8Array(2 * REQUEST_LIMITS.bodyBytes);
      await refused(await handler(post(big)), 413, "body_too_large");
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.enqueue(new Uint8Array(64 * 1024));
        },
      });
      await refused(await handler(post(stream)), 413, "body_too_large");
    });

    it("refuses truncated Snappy, random bytes and protobuf garbage with 400", async () => {
      const { handler, published } = remoteWrite();
      const whole = encode(TWO_SERIES);
      const bodies = [
        whole.subarray(0, whole.length - 1),
        whole.subarray(0, 3),
        new Uint8Array(0),
        new Uint8Array([0x0a, 0xfc, 0xfa, 0xff, 0xff, 0xff]),
        new Uint8Array(Buffer.from("definitely not snappy")),
        compress(new Uint8Array([0x0a, 0x05, 0x01])),
        compress(new Uint8Array(Buffer.from('{"data": {"value": 1}}'))),
      ];
      for (const body of bodies) await refused(await handler(post(body)), 400, "malformed_body");
      expect(published).toEqual([]);
    });
  });

  describe("when the broker fails", () => {
    for (const code of ["nats_unavailable", "publish_timeout", "stream_full"] as const) {
      it(`answers ${code} with 503 and Retry-After, which Prometheus retries`, async () => {
        const { handler } = remoteWrite({
          publish: () => Promise.reject(new ApiError(code, "down")),
        });
        const res = await handler(post(encode(TWO_SERIES)));
        await refused(res, 503, code);
        expect(res.headers.get("retry-after")).toBe(String(ERRORS[code].retryAfter));
      });
    }

    it("answers an unexpected failure with an opaque 500", async () => {
      const { handler, logs } = remoteWrite({ publish: () => Promise.reject(new Error("bug")) });
      const body = await refused(await handler(post(encode(TWO_SERIES))), 500, "internal_error");
      expect(body.error.message).not.toContain("bug");
      expect(logs.some((l) => l["msg"] === "unexpected error")).toBe(true);
    });
  });
});

describe("whatever arrives", () => {
  const documented4xx = new Set(
    Object.values(ERRORS)
      .map((e) => e.status)
      .filter((s) => s < 500),
  );
  const labelName = fc.oneof(
    fc.constantFrom("__name__", "job", "instance", "le"),
    fc.string({ maxLength: 8 }),
  );
  const writeRequest = fc.record({
    timeseries: fc.array(
      fc.record({
        labels: fc.array(fc.record({ name: labelName, value: fc.string({ maxLength: 8 }) }), {
          maxLength: 4,
        }),
        samples: fc.array(
          fc.record({
            value: fc.double(),
            timestamp: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
          }),
          { maxLength: 4 },
        ),
      }),
      { maxLength: 4 },
    ),
  });
  const body = fc.oneof(
    writeRequest.map((init) => encode(init)),
    writeRequest.chain((init) =>
      fc
        .tuple(fc.constant(encode(init)), fc.nat(), fc.integer({ min: 0, max: 255 }))
        .map(([bytes, at, byte]) => {
          const copy = new Uint8Array(bytes);
          if (copy.length > 0) copy[at % copy.length] = byte;
          return copy;
        }),
    ),
    fc.uint8Array({ maxLength: 300 }).map((bytes) => compress(bytes)),
    fc.uint8Array({ maxLength: 300 }),
  );

  it("gets a 204 or a documented 4xx, never a 5xx; nothing is published unless it is a 204", async () => {
    await fc.assert(
      fc.asyncProperty(body, async (bytes) => {
        const { handler, published } = remoteWrite();
        const res = await handler(post(bytes));
        if (res.status !== 204) {
          expect(documented4xx).toContain(res.status);
          expect(published).toEqual([]);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it("stores exactly the finite samples of a valid request, as sent", async () => {
    const valid = fc.array(
      fc.record({
        name: fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !s.includes("\u0000")),
        job: fc.string({ maxLength: 8 }).filter((s) => !s.includes("\u0000")),
        samples: fc.array(
          fc.record({
            value: fc.double({ noNaN: true, noDefaultInfinity: true }),
            // Up to the bound on future timestamps (ten minutes past the receive time).
            timestamp: fc.bigInt({ min: 0n, max: BigInt(NOW + 600_000) }),
          }),
          { maxLength: 5 },
        ),
      }),
      { maxLength: 5 },
    );
    await fc.assert(
      fc.asyncProperty(valid, async (all) => {
        const { handler, published } = remoteWrite();
        const init = {
          timeseries: all.map((s) => ({
            labels: [
              { name: "__name__", value: s.name },
              { name: "job", value: s.job },
            ],
            samples: s.samples,
          })),
        };
        expect((await handler(post(encode(init)))).status).toBe(204);
        const expected = all.flatMap((s) =>
          s.samples.map((sample) => ({
            name: s.name,
            // The envelope is JSON, which has no negative zero.
            value: sample.value === 0 ? 0 : sample.value,
            timestamp: Number(sample.timestamp),
            ...(s.job === "" ? {} : { tags: { job: s.job } }),
          })),
        );
        expect(publishedMetrics(published)).toEqual(expected);
      }),
      {
        numRuns: 300,
        examples: [[[{ name: "zero", job: "", samples: [{ value: -0, timestamp: 0n }] }]]],
      },
    );
  });
});
