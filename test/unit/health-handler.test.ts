import type { JetStreamManager, NatsConnection, StreamInfo } from "nats";
import { describe, expect, it } from "vitest";
import { createSourceCheck } from "../../edge/http/auth.ts";
import { createHealthHandler } from "../../edge/http/health-handler.ts";
import type { ConnectionProvider } from "../../shared/nats-connection.ts";
import { silentLogger } from "../helpers/logger.ts";
import type { ErrorBody } from "../helpers/requests.ts";

const SECRET = "nats://admin:hunter2@10.0.0.7:4222";

/** What the stream looks like to the fake JetStream, internals included. */
const streamInfo = {
  config: {
    name: "METRICS",
    subjects: ["metrics.>"],
    storage: "file",
    max_bytes: 1_073_741_824,
    sealed: false,
  },
  state: {
    messages: 12,
    bytes: 3456,
    first_seq: 1,
    last_seq: 12,
    consumer_count: 1,
  },
  cluster: { name: "c1", leader: "n1", replicas: [{ name: "n2", current: true }] },
  created: "2024-05-01T12:34:56Z",
};

interface FakeJetStream {
  /** What `jetstreamManager()` does. */
  readonly manager?: () => Promise<unknown>;
  /** What `streams.info(name)` does. */
  readonly info?: (name: string) => Promise<unknown>;
}

/** A connection provider whose connection answers as told, recording what it was asked. */
function connections(fake: FakeJetStream = {}, get?: () => Promise<NatsConnection>) {
  const asked = { gets: 0, streams: [] as string[], timeouts: [] as (number | undefined)[] };
  const info = fake.info ?? (() => Promise.resolve(streamInfo));
  const jsm = {
    streams: {
      info(name: string) {
        asked.streams.push(name);
        return info(name) as Promise<StreamInfo>;
      },
    },
  };
  const connection = {
    jetstreamManager(options?: { timeout?: number }) {
      asked.timeouts.push(options?.timeout);
      return (fake.manager?.() ?? Promise.resolve(jsm)) as Promise<JetStreamManager>;
    },
  } as unknown as NatsConnection;
  const provider: ConnectionProvider = {
    get() {
      asked.gets++;
      return get ? get() : Promise.resolve(connection);
    },
    close: () => Promise.resolve(),
  };
  return { provider, asked };
}

function health(provider: ConnectionProvider) {
  return createHealthHandler({
    connections: provider,
    streamName: "METRICS",
    timeoutMs: 1500,
    logger: silentLogger,
  });
}

const request = (method = "GET") =>
  new Request("http://localhost/api/v1/health", {
    method,
    headers: { "x-request-id": "health-1" },
  });

async function expectUnavailable(res: Response, code: string, retryAfter: string) {
  const text = await res.text();
  expect(res.status).toBe(503);
  expect(res.headers.get("retry-after")).toBe(retryAfter);
  const body = JSON.parse(text) as ErrorBody;
  expect(body).toMatchObject({ status: "error", error: { code }, requestId: "health-1" });
  expect(text).not.toContain("hunter2");
  expect(text).not.toContain("10.0.0.7");
}

describe("health handler", () => {
  it("answers 200 with the stream's name and counts, and nothing else", async () => {
    const { provider, asked } = connections();
    const res = await health(provider)(request());

    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("x-request-id")).toBe("health-1");
    expect(await res.json()).toEqual({
      status: "ok",
      stream: { name: "METRICS", messages: 12, bytes: 3456, consumers: 1 },
    });
    expect(asked.streams).toEqual(["METRICS"]);
    expect(asked.timeouts).toEqual([1500]);
  });

  it("answers HEAD like GET", async () => {
    const { provider } = connections();
    expect((await health(provider)(request("HEAD"))).status).toBe(200);
  });

  it("answers 503 nats_unavailable when no connection can be made, without its details", async () => {
    const { provider } = connections({}, () =>
      Promise.reject(new Error(`connect ECONNREFUSED ${SECRET}`)),
    );
    await expectUnavailable(await health(provider)(request()), "nats_unavailable", "2");
  });

  it("answers 503 stream_unavailable when the stream cannot be read", async () => {
    const { provider } = connections({
      info: () => Promise.reject(new Error(`stream not found on ${SECRET}`)),
    });
    const res = await health(provider)(request());
    await expectUnavailable(res, "stream_unavailable", "5");
  });

  it("answers 503 stream_unavailable when JetStream does not answer", async () => {
    const { provider } = connections({
      manager: () => Promise.reject(new Error(`timeout from ${SECRET}`)),
    });
    await expectUnavailable(await health(provider)(request()), "stream_unavailable", "5");
  });

  it.each(["POST", "PUT", "DELETE", "PATCH"])(
    "answers %s with 405 and Allow: GET, HEAD, without asking NATS",
    async (method) => {
      const { provider, asked } = connections();
      const res = await health(provider)(request(method));
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("GET, HEAD");
      expect(((await res.json()) as ErrorBody).error.code).toBe("method_not_allowed");
      expect(asked.gets).toBe(0);
    },
  );
});

describe("health handler in local development", () => {
  const handler = (provider: ConnectionProvider) =>
    createHealthHandler({
      connections: provider,
      streamName: "METRICS",
      timeoutMs: 1500,
      logger: silentLogger,
      checkSource: createSourceCheck({ apiKeys: [], authMode: undefined, isLocal: true }),
    });
  const from = (headers: Record<string, string>) =>
    new Request("http://localhost:8080/api/v1/health", { headers });

  it("answers a request sent to localhost", async () => {
    const { provider } = connections();
    expect((await handler(provider)(from({ host: "localhost:8080" }))).status).toBe(200);
  });

  it("refuses one sent to another name (DNS rebinding) or from another origin, asking nothing", async () => {
    const { provider, asked } = connections();
    const rebound = await handler(provider)(from({ host: "attacker.example:8080" }));
    expect(rebound.status).toBe(403);
    expect(((await rebound.json()) as ErrorBody).error.code).toBe("host_not_allowed");
    const page = await handler(provider)(from({ origin: "https://attacker.example" }));
    expect(((await page.json()) as ErrorBody).error.code).toBe("origin_not_allowed");
    expect(asked.gets).toBe(0);
  });
});
