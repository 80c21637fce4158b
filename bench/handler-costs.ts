/**
 * What the ingest handler's pieces cost, one at a time, outside any load: the web `Request` a
 * function receives, reading its body, parsing and validating a metric, the envelope, the
 * `Response`, header lookups and ids. It explains the single-metric ratio in docs/benchmarks.md
 * (bench/notes.md). Run: `node bench/handler-costs.ts` (no server needed); microseconds per call,
 * the median of 5 rounds of 100,000 calls after a warm-up.
 */
import { randomUUID } from "node:crypto";
import { runToEnd } from "../shared/cooperative.ts";
import { encodeEnvelope } from "../shared/envelope.ts";
import { jsonResponse } from "../edge/http/http-response.ts";
import { jsonEncodingOf, parseMetrics } from "../edge/json/parse-metrics.ts";
import { readBodyText } from "../edge/http/read-body.ts";
import { ingestRequest } from "./ingest-in-process.ts";
import { jsonBody, median } from "./support.ts";

const CALLS = 100_000;
const body = jsonBody(1);
const { metrics } = runToEnd(parseMetrics([body], jsonEncodingOf("application/json")));

async function microseconds(fn: () => unknown): Promise<number> {
  for (let i = 0; i < 10_000; i++) await fn();
  const rounds: number[] = [];
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    for (let i = 0; i < CALLS; i++) await fn();
    rounds.push(((performance.now() - start) / CALLS) * 1000);
  }
  return median(rounds);
}

const pieces: [string, () => unknown][] = [
  ["new Request (the host's)", () => ingestRequest(body)],
  ["new Request, then its body read", () => readBodyText(ingestRequest(body), 1 << 20)],
  [
    "new Request, then 6 header lookups",
    () => {
      const headers = ingestRequest(body).headers;
      for (const name of ["x-request-id", "authorization", "content-type", "idempotency-key"]) {
        headers.get(name);
      }
      headers.get("content-encoding");
      headers.get("traceparent");
    },
  ],
  [
    "parse and validate one metric",
    () => runToEnd(parseMetrics([body], jsonEncodingOf("application/json"))),
  ],
  [
    "the envelope",
    () =>
      encodeEnvelope({
        id: randomUUID(),
        receivedAt: Date.now(),
        key: "message",
        metrics,
      }),
  ],
  [
    "the 202 Response, and reading it",
    () =>
      jsonResponse(
        202,
        { status: "ok", accepted: 1, id: "x", duplicate: false, stream: "METRICS", seq: 1 },
        { "x-request-id": "abc" },
      ).arrayBuffer(),
  ],
  ["a UUID", () => randomUUID()],
];

for (const [name, fn] of pieces) {
  console.log(`${name.padEnd(40)} ${(await microseconds(fn)).toFixed(2)} µs`);
}
