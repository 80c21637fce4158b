import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createAuthenticator } from "../../edge/http/auth.ts";
import { decodeEnvelope } from "../../shared/envelope.ts";
import { ApiError, ERRORS } from "../../edge/http/errors.ts";
import { createIngestHandler } from "../../edge/json/ingest-handler.ts";
import { fakePublisher } from "../helpers/fake-publisher.ts";
import { silentLogger } from "../helpers/logger.ts";

/**
 * Whatever arrives — random JSON, mutated valid bodies, random bytes, odd headers and
 * encodings — the handler answers with a documented status and never throws; it answers 5xx
 * only when the publisher failed; and everything it publishes re-validates as an envelope.
 */
const documented = new Set<number>([202, ...Object.values(ERRORS).map((e) => e.status)]);

const validMetric = fc.record(
  {
    value: fc.double({ noNaN: true, noDefaultInfinity: true }),
    name: fc.string({ minLength: 1, maxLength: 20 }),
    timestamp: fc.oneof(
      fc.integer({ min: 0, max: 253_402_300_799_999 }),
      fc
        .date({ min: new Date(0), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true })
        .map((d) => d.toISOString()),
    ),
    tags: fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), fc.string({ maxLength: 10 }), {
      maxKeys: 5,
    }),
    extra: fc.jsonValue({ maxDepth: 3 }),
  },
  { requiredKeys: ["value"] },
);

/** A body text: valid, valid then mutated, any JSON, or any text. */
const bodyText = fc.oneof(
  fc.array(validMetric, { minLength: 1, maxLength: 5 }).map((data) => JSON.stringify({ data })),
  fc
    .tuple(
      fc.array(validMetric, { minLength: 1, maxLength: 5 }).map((data) => JSON.stringify({ data })),
      fc.nat(),
      fc.string({ maxLength: 3 }),
    )
    .map(([text, at, insert]) => {
      const i = at % (text.length + 1);
      return text.slice(0, i) + insert + text.slice(i + 1);
    }),
  fc
    .array(validMetric, { minLength: 1, maxLength: 5 })
    .map((ms) => ms.map((m) => JSON.stringify(m)).join("\n")),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string(),
);

const body = fc.oneof(
  bodyText.map((text) => ({ bytes: new Uint8Array(Buffer.from(text)), gzip: false })),
  bodyText.map((text) => ({ bytes: new Uint8Array(gzipSync(text)), gzip: true })),
  fc
    .tuple(fc.uint8Array({ maxLength: 200 }), fc.boolean())
    .map(([bytes, gzip]) => ({ bytes, gzip })),
);

const contentType = fc.constantFrom(
  "application/json",
  "application/x-ndjson",
  "APPLICATION/JSON; charset=UTF-8",
  "application/json; charset=latin1",
  "text/plain",
  "",
);

const publisherOutcome = fc.constantFrom("ack", "duplicate", "api-error", "crash");

describe("the ingest handler under random input", () => {
  it("answers a documented status, 5xx only when publishing failed, and publishes only valid envelopes", async () => {
    await fc.assert(
      fc.asyncProperty(
        body,
        contentType,
        fc.option(fc.string({ maxLength: 40 })),
        publisherOutcome,
        async (b, type, key, outcome) => {
          const publisher = fakePublisher(() => {
            if (outcome === "api-error")
              return Promise.reject(new ApiError("publish_timeout", "late"));
            if (outcome === "crash") return Promise.reject(new Error("boom"));
            return Promise.resolve({
              stream: "METRICS",
              seq: 1,
              duplicate: outcome === "duplicate",
            });
          });
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
          const headers: Record<string, string> = {};
          if (type !== "") headers["content-type"] = type;
          if (b.gzip) headers["content-encoding"] = "gzip";
          if (key !== null) headers["idempotency-key"] = key;
          const res = await handler(
            new Request("http://localhost/api/v1/metrics", {
              method: "POST",
              headers,
              body: b.bytes,
            }),
          );

          expect(documented.has(res.status)).toBe(true);
          expect(res.headers.get("content-type")).toContain("application/json");
          const answer = (await res.json()) as { status: string };
          expect(answer.status).toBe(res.status === 202 ? "ok" : "error");
          if (res.status >= 500) expect(outcome === "api-error" || outcome === "crash").toBe(true);
          if (publisher.published.length === 0) expect(res.status).not.toBe(202);
          for (const message of publisher.published) {
            const decoded = decodeEnvelope(message.data);
            expect(decoded.ok).toBe(true);
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
