import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { createAuthenticator } from "../../edge/http/auth.ts";
import { loadConfig } from "../../shared/config.ts";
import { createHandlers } from "../../edge/http/handlers.ts";
import { ApiError } from "../../edge/http/errors.ts";
import { createIngestHandler } from "../../edge/json/ingest-handler.ts";
import { createLogger } from "../../shared/logger.ts";
import { createRefusalLog } from "../../edge/http/refusal-log.ts";
import { fakePublisher } from "../helpers/fake-publisher.ts";

/**
 * Logs never hold keys, credentials or bodies, and error answers never hold stack traces or
 * internal addresses: every log line and answer of a series of requests is searched for the
 * secrets the test configured.
 */
const API_KEY = "sk-live-KEY-0f9e8d7c";
const WRONG_KEY = "sk-live-WRONG-1a2b3c";
const NATS_PASSWORD = "nats-PASSWORD-4d5e6f";
const BODY_SECRET = "BODY-SECRET-7g8h9i";

function capture() {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(line) } };
}

const secrets = [API_KEY, WRONG_KEY, NATS_PASSWORD, BODY_SECRET];

function expectClean(texts: readonly string[]) {
  for (const text of texts) {
    for (const secret of secrets) expect(text).not.toContain(secret);
    expect(text).not.toMatch(/\n\s+at /); // a stack trace
    expect(text).not.toMatch(/\.ts:\d+/);
  }
}

describe("logs and answers keep secrets", () => {
  it("with a fake broker: keys, bodies and unexpected errors", async () => {
    const { lines, destination } = capture();
    const logger = createLogger("test", "trace", destination);
    // The wrong key's refusal is logged by the refusal log, as the function wires it.
    const refusals = createRefusalLog(logger);
    let fail: Error | undefined;
    const handler = createIngestHandler({
      publisher: fakePublisher(() =>
        fail
          ? Promise.reject(fail)
          : Promise.resolve({ stream: "METRICS", seq: 1, duplicate: false }),
      ),
      authenticate: createAuthenticator({
        apiKeys: [API_KEY],
        authMode: undefined,
        isLocal: false,
        scope: "json",
        onRefused: (_, refusal) => {
          refusals.record("192.0.2.1", refusal.code);
        },
      }),
      subject: "metrics.json",
      logger,
    });
    const send = (key: string, body: string | Uint8Array, headers: Record<string, string> = {}) =>
      handler(
        new Request("http://localhost/api/v1/metrics", {
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${key}`,
            ...headers,
          },
          body,
        }),
      );
    const answers: Response[] = [
      await send(API_KEY, `{"data": {"value": 1, "note": "${BODY_SECRET}"}}`),
      await send(WRONG_KEY, `{"data": {"value": 1, "note": "${BODY_SECRET}"}}`),
      await send(API_KEY, `{"data": {"value": "${BODY_SECRET}"}}`),
      await send(API_KEY, `{"data": {"value": 1, "${BODY_SECRET}": }}`),
      await send(API_KEY, gzipSync(`{"data": {"value": "${BODY_SECRET}"}}`), {
        "content-encoding": "gzip",
      }),
    ];
    fail = new ApiError("publish_timeout", "late", {
      cause: new Error(`timeout at 10.1.2.3:4222`),
    });
    answers.push(await send(API_KEY, `{"data": {"value": 1, "note": "${BODY_SECRET}"}}`));
    fail = new Error(`boom: could not reach 10.1.2.3:4222 with ${NATS_PASSWORD}`);
    answers.push(await send(API_KEY, `{"data": {"value": 1, "note": "${BODY_SECRET}"}}`));

    expect(answers.map((a) => a.status)).toEqual([202, 401, 400, 400, 400, 503, 500]);
    const bodies = await Promise.all(answers.map((a) => a.text()));
    expectClean(bodies);
    for (const body of bodies) expect(body).not.toContain("10.1.2.3");
    expect(lines.length).toBeGreaterThanOrEqual(answers.length);
    expectClean(lines.filter((l) => !l.includes('"msg":"unexpected error"')));
    // The one unexpected error is logged with its own message and stack, for whoever debugs the
    // bug (what a bug's message holds is not the handler's to filter), but still without the
    // keys or the body.
    const unexpected = lines.filter((l) => l.includes('"msg":"unexpected error"'));
    expect(unexpected).toHaveLength(1);
    for (const secret of [API_KEY, WRONG_KEY, BODY_SECRET])
      expect(unexpected[0]).not.toContain(secret);
  });

  it("with NATS refusing the password: one clear log line without it, and a bare 503", async () => {
    const { lines, destination } = capture();
    const config = loadConfig({
      NATS_URL: "nats://127.0.0.1:1",
      NATS_USER: "ingest",
      NATS_PASSWORD,
      NATS_CONNECT_TIMEOUT_MS: "300",
      INGEST_API_KEYS: API_KEY,
    });
    const handlers = createHandlers(config, {
      isLocal: false,
      logger: createLogger("test", "trace", destination),
      connectionName: "test",
    });
    const res = await handlers.ingest(
      new Request("http://localhost/api/v1/metrics", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
        body: `{"data": {"value": 1, "note": "${BODY_SECRET}"}}`,
      }),
    );
    await handlers.close();
    expect(res.status).toBe(503);
    const body = await res.text();
    expectClean([body, ...lines]);
    expect(body).not.toContain("127.0.0.1");
    expect(lines.some((l) => l.includes('"level":50'))).toBe(true);
  });
});
