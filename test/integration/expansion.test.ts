import { mkdtemp, rm } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../shared/config.ts";
import { decodeEnvelope } from "../../shared/envelope.ts";
import { ensureStreams } from "../../shared/stream-setup.ts";
import { errorCodeOf } from "../helpers/error-code.ts";
import { isolated } from "../helpers/isolated.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import * as payloads from "../helpers/payloads.ts";
import { startServe, type ServeProcess } from "../helpers/serve.ts";

/**
 * What one request may become, through the self-hosted server (`npm run serve`) as its own
 * process against a private nats-server, with one valid key as a client has it: the three
 * amplification payloads are refused with 413 and leave the stream as it was, honest large
 * batches of each protocol are taken whole, and a one-metric request is answered in about its
 * usual time while maximum-size requests are being handled.
 */
const KEY = "expansion-test-key";

let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dir: string;
let config: Config;
let serve: ServeProcess;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await nc.jetstreamManager();
  dir = await mkdtemp(join(tmpdir(), "expansion-test-"));
  const setup = isolated(nats.url, "expansion", dir, { INGEST_API_KEYS: KEY });
  config = setup.config;
  await ensureStreams(jsm, config);
  serve = await startServe(setup.env);
});

afterAll(async () => {
  await serve.child.stop();
  await nc.close();
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
});

type Protocol = keyof typeof payloads.PATHS;

interface Answer {
  readonly status: number;
  readonly code: string | undefined;
  /** From sending the request to the end of the answer. */
  readonly ms: number;
}

/** One POST with the key; `agent` false for a connection of its own. */
function post(
  protocol: Protocol,
  payload: { body: Uint8Array | string; headers: Readonly<Record<string, string>> },
  agent: Agent | false = false,
): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      `${serve.base}${payloads.PATHS[protocol]}`,
      {
        method: "POST",
        agent,
        headers: {
          ...payload.headers,
          authorization: `Bearer ${KEY}`,
          "content-length": String(Buffer.byteLength(payload.body)),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          const body = Buffer.concat(chunks);
          resolve({
            status,
            code:
              status >= 400 ? errorCodeOf(res.headers["content-type"] ?? null, body) : undefined,
            ms: performance.now() - started,
          });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(payload.body);
  });
}

async function streamMessages(): Promise<number> {
  return (await jsm.streams.info(config.stream.name)).state.messages;
}

/** Every metric of the stream's messages after sequence `after`. */
async function metricsAfter(after: number): Promise<number> {
  const { last_seq: last } = (await jsm.streams.info(config.stream.name)).state;
  let metrics = 0;
  for (let seq = after + 1; seq <= last; seq++) {
    const decoded = decodeEnvelope(
      (await jsm.streams.getMessage(config.stream.name, { seq })).data,
    );
    if (!decoded.ok) throw new Error(`message ${seq}: ${decoded.message}`);
    metrics += decoded.envelope.metrics.length;
  }
  return metrics;
}

const round2 = (n: number) => Math.round(n * 100) / 100;

const AMPLIFYING = [
  [
    "line protocol: 64 maximum tags × 10,000 fields, gzipped",
    "influx",
    payloads.amplifyingLineProtocol(),
  ],
  [
    "remote write: 64 maximum labels × 10,000 samples",
    "prometheus",
    payloads.amplifyingRemoteWrite(),
  ],
  [
    "OTLP: 64 maximum resource attributes × 10,000 points, gzipped",
    "otlp",
    payloads.amplifyingOtlp(),
  ],
] as const;

/** Honest batches at about the most a request may hold: 10,000 points, or 1 MiB of body. */
const HONEST = [
  [
    "Telegraf's default inputs, 58 collections (9,918 fields)",
    "influx",
    payloads.telegrafBatch(58),
    204,
  ],
  [
    "Prometheus, 3,000 series with Kubernetes labels (1 MiB)",
    "prometheus",
    payloads.prometheusBatch(3000),
    204,
  ],
  [
    "an OpenTelemetry service's export, 250 routes (1 MiB)",
    "otlp",
    payloads.otelSdkExport(250),
    200,
  ],
  ["a JSON batch of 7,500 metrics (1 MiB)", "json", payloads.jsonBatch(7500), 202],
] as const;

describe("what one request may become, through npm run serve", () => {
  it.each(AMPLIFYING)(
    "%s: 413 expansion_over_ratio, nothing published",
    async (_, protocol, payload) => {
      const before = await streamMessages();
      const answer = await post(protocol, payload);
      expect([answer.status, answer.code]).toEqual([413, "expansion_over_ratio"]);
      expect(await streamMessages()).toBe(before);
    },
  );

  it("refuses a larger body of the same kind at the cap: 413 expansion_over_limit, nothing published", async () => {
    const before = await streamMessages();
    const answer = await post("influx", payloads.amplifyingLineProtocol(24));
    expect([answer.status, answer.code]).toEqual([413, "expansion_over_limit"]);
    expect(await streamMessages()).toBe(before);
  });

  it.each(HONEST)("%s: taken whole", async (_, protocol, payload, status) => {
    const { last_seq: before } = (await jsm.streams.info(config.stream.name)).state;
    const answer = await post(protocol, payload);
    expect(answer.status).toBe(status);
    expect(await metricsAfter(before)).toBe(payload.points);
  });

  it("answers a one-metric request within 10 times its idle p99 while maximum-size requests run", async () => {
    const seed = {
      body: '{"data": {"value": 123.45}}',
      headers: { "content-type": "application/json" },
    };
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    /** `count` one-metric requests one after another, a few milliseconds apart. */
    const oneMetric = async (count: number) => {
      const times: number[] = [];
      for (let i = 0; i < count; i++) {
        const answer = await post("json", seed, agent);
        expect(answer.status).toBe(202);
        times.push(answer.ms);
        await sleep(5);
      }
      return times;
    };
    const p99 = (times: readonly number[]) => {
      const sorted = [...times].sort((a, b) => a - b);
      return sorted[Math.ceil(sorted.length * 0.99) - 1] ?? Number.NaN;
    };

    await oneMetric(50); // warm-up: connections, code paths

    // In rounds, so that whatever else runs on the machine weighs on both alike: one-metric
    // requests alone, then beside three clients each sending maximum-size requests one after
    // another (the honest batches and the amplification payloads in turn, at most 4 each).
    const heavy = [...HONEST, ...AMPLIFYING].map(([, protocol, payload]) => ({
      protocol,
      payload,
    }));
    const heavyAnswers: number[] = [];
    const idle: number[] = [];
    const underLoad: number[] = [];
    for (let round = 0; round < 4; round++) {
      idle.push(...(await oneMetric(50)));
      const state = { loaded: true };
      const client = async (first: number) => {
        const own = new Agent({ keepAlive: true, maxSockets: 1 });
        for (let i = 0; i < 4 && state.loaded; i++) {
          const next = heavy[(first + round + i) % heavy.length];
          if (next === undefined) break;
          heavyAnswers.push((await post(next.protocol, next.payload, own)).status);
        }
        own.destroy();
      };
      const clients = [0, 2, 4].map(client);
      await sleep(100);
      underLoad.push(...(await oneMetric(50)));
      state.loaded = false;
      await Promise.all(clients);
    }
    agent.destroy();

    const idleP99 = p99(idle);
    const loadedP99 = p99(underLoad);
    console.info(
      JSON.stringify({
        oneMetricP99Ms: { idle: round2(idleP99), underLoad: round2(loadedP99) },
        ratio: round2(loadedP99 / idleP99),
        maximumSizeRequests: heavyAnswers.length,
      }),
    );
    expect(heavyAnswers.length).toBeGreaterThanOrEqual(12);
    for (const status of heavyAnswers) expect([200, 202, 204, 413]).toContain(status);
    expect(loadedP99).toBeLessThanOrEqual(10 * idleP99);
  }, 120_000);
});
