import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { unzipSync } from "fflate";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { compress } from "snappyjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeEnvelope } from "../../shared/envelope.ts";
import { WriteRequestSchema } from "../../shared/gen/proto/prometheus/remote_pb.js";
import { ensureStreams } from "../../shared/stream-setup.ts";
import { testConfig } from "../helpers/ingest.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { PROJECT_ROOT } from "../helpers/processes.ts";

/**
 * The functions as Netlify packages them: `netlify functions:build` (the CLI's own bundler,
 * zip-it-and-ship-it, which `netlify build` runs too) makes the zips; each is unpacked far from
 * this project's node_modules, and a fresh Node process imports the function module the zip's
 * entry point loads and calls its default export with a `Request`, against a private NATS.
 */
const run = promisify(execFile);
const API_KEY = "bundle-test-key-0001";
const SEED_BODY = '{"data": {"value": 123.45}}';

const FUNCTIONS = [
  "ingest",
  "health",
  "influx-write",
  "otlp-metrics",
  "prometheus-write",
  "series",
  "query-range",
];

let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dir: string;
let manifest: Manifest;

interface Manifest {
  functions: {
    name: string;
    runtimeVersion: string;
    routes: { literal: string }[];
    trafficRules?: {
      action: {
        type: string;
        config: {
          rateLimitConfig: { windowLimit: number; windowSize: number };
          aggregate: { keys: { type: string }[] };
        };
      };
    };
  }[];
}

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await nc.jetstreamManager();
  await ensureStreams(jsm, testConfig(nats.url));
  // Under the system's temporary directory: no node_modules above it to fall back on.
  dir = await mkdtemp(join(tmpdir(), "function-bundle-"));
  const out = join(dir, "zips");
  const netlify = join(PROJECT_ROOT, "node_modules", ".bin", "netlify");
  try {
    await run(netlify, ["functions:build", "--src", "functions", "--functions", out], {
      cwd: PROJECT_ROOT,
      timeout: 100_000,
    });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`netlify functions:build failed:\n${stdout ?? ""}\n${stderr ?? ""}`, {
      cause: err,
    });
  }
  manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as Manifest;
  for (const name of FUNCTIONS) {
    await unzipTo(join(out, `${name}.zip`), join(dir, name));
  }
}, 120_000);

afterAll(async () => {
  await nc.close();
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
});

async function unzipTo(zip: string, target: string): Promise<void> {
  const entries = unzipSync(new Uint8Array(await readFile(zip)));
  for (const [path, data] of Object.entries(entries)) {
    if (path.endsWith("/")) continue;
    const file = join(target, path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, data);
  }
}

/**
 * Runs in a fresh Node process, in the unpacked zip: imports the function module, calls its
 * default export with each request of REQUESTS, prints what it answered and where `nats` was
 * found. The module keeps its NATS connection open (as a warm function does), so it exits itself.
 */
const RUNNER = `
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
const file = process.argv[1];
const fn = await import(pathToFileURL(file).href);
const results = [];
for (const spec of JSON.parse(process.env.REQUESTS)) {
  if (spec.bodyBase64) spec.init.body = Buffer.from(spec.bodyBase64, "base64");
  const res = await fn.default(new Request(spec.url, spec.init));
  const text = await res.text();
  results.push({ status: res.status, body: text === "" ? null : JSON.parse(text) });
}
console.log(JSON.stringify({
  natsFrom: createRequire(file).resolve("nats"),
  config: fn.config,
  results,
}));
process.exit(0);
`;

interface RunnerOutput {
  natsFrom: string;
  config: { path: string; rateLimit?: unknown };
  results: { status: number; body: Record<string, unknown> | null }[];
}

async function callBundled(
  name: string,
  requests: { url: string; init: RequestInit; bodyBase64?: string }[],
): Promise<RunnerOutput> {
  const root = join(dir, name);
  const module = join(root, "functions", `${name}.mjs`);
  expect(existsSync(module), `${name}.zip holds functions/${name}.mjs`).toBe(true);
  try {
    const { stdout } = await run(
      process.execPath,
      ["--input-type=module", "--eval", RUNNER, module],
      {
        cwd: root,
        // Only what a function has on Netlify: its environment variables, nothing of vitest's.
        env: {
          PATH: process.env["PATH"] ?? "",
          NATS_URL: nats.url,
          INGEST_API_KEYS: API_KEY,
          LOG_LEVEL: "warn",
          REQUESTS: JSON.stringify(requests),
        },
        timeout: 30_000,
      },
    );
    return JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as RunnerOutput;
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`the bundled ${name} function failed:\n${stdout ?? ""}\n${stderr ?? ""}`, {
      cause: err,
    });
  }
}

function seedRequest(headers: Record<string, string>) {
  return {
    url: "https://metrics.example/api/v1/metrics",
    init: {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: SEED_BODY,
    },
  };
}

describe("the function bundle Netlify builds", () => {
  it("lists every function on its path, on Node 24, each endpoint but health rate limited", () => {
    const byName = new Map(manifest.functions.map((f) => [f.name, f]));
    const paths = Object.fromEntries(
      FUNCTIONS.map((name) => [name, byName.get(name)?.routes.map((r) => r.literal)]),
    );
    expect(paths).toEqual({
      ingest: ["/api/v1/metrics"],
      health: ["/api/v1/health"],
      "influx-write": ["/api/v2/write"],
      "otlp-metrics": ["/v1/metrics"],
      "prometheus-write": ["/api/v1/write"],
      series: ["/api/v1/series"],
      "query-range": ["/api/v1/query_range"],
    });
    for (const f of manifest.functions) expect(f.runtimeVersion).toBe("nodejs24.x");

    for (const name of FUNCTIONS.filter((f) => f !== "health")) {
      const rule = byName.get(name)?.trafficRules?.action;
      expect(rule?.type).toBe("rate_limit");
      expect(rule?.config.rateLimitConfig).toMatchObject({ windowLimit: 600, windowSize: 60 });
      expect(rule?.config.aggregate.keys.map((k) => k.type).sort()).toEqual(["domain", "ip"]);
    }
    expect(byName.get("health")?.trafficRules).toBeUndefined();
  });

  it("packs into each function only the code it runs: no protobuf for the JSON API", () => {
    const has = (name: string, path: string) => existsSync(join(dir, name, path));
    for (const name of ["ingest", "health", "influx-write", "series", "query-range"]) {
      expect(has(name, "node_modules/@bufbuild/protobuf"), name).toBe(false);
      expect(has(name, "node_modules/snappyjs"), name).toBe(false);
    }
    expect(has("otlp-metrics", "node_modules/@bufbuild/protobuf")).toBe(true);
    expect(has("prometheus-write", "node_modules/snappyjs")).toBe(true);
    // Validators are compiled at build time: neither the schema library nor ajv is packed.
    for (const name of FUNCTIONS) {
      expect(has(name, "node_modules/@sinclair/typebox"), name).toBe(false);
      expect(has(name, "node_modules/ajv"), name).toBe(false);
    }
  });

  it("imports in a fresh Node process from the zip alone and publishes the seed's request", async () => {
    const out = await callBundled("ingest", [
      seedRequest({ authorization: `Bearer ${API_KEY}` }),
      seedRequest({}),
    ]);
    // Its packages are the zip's own copies, not this project's node_modules.
    expect(out.natsFrom.startsWith(join(dir, "ingest", "node_modules", "nats"))).toBe(true);
    expect(out.config.path).toBe("/api/v1/metrics");

    const [accepted, refused] = out.results;
    expect(accepted?.status).toBe(202);
    expect(accepted?.body).toMatchObject({ status: "ok", accepted: 1, stream: "METRICS" });
    const { id, seq } = accepted?.body as { id: string; seq: number };
    const stored = await jsm.streams.getMessage("METRICS", { seq });
    expect(stored.header.get("Nats-Msg-Id")).toBe(id);
    const decoded = decodeEnvelope(stored.data);
    expect(decoded.ok && decoded.envelope.metrics).toEqual([{ value: 123.45 }]);

    // Outside netlify dev, a key is required.
    expect(refused?.status).toBe(401);
    expect(refused?.body).toMatchObject({ status: "error", error: { code: "unauthorized" } });
  });

  it("answers the health request from its own zip", async () => {
    const out = await callBundled("health", [
      { url: "https://metrics.example/api/v1/health", init: { method: "GET" } },
    ]);
    expect(out.natsFrom.startsWith(join(dir, "health", "node_modules", "nats"))).toBe(true);
    expect(out.results[0]?.status).toBe(200);
    expect(out.results[0]?.body).toMatchObject({ status: "ok", stream: { name: "METRICS" } });
  });

  it("asks the query service from its own zip, and says so when no worker answers", async () => {
    const out = await callBundled("query-range", [
      {
        url: "https://metrics.example/api/v1/query_range?name=cpu",
        init: { method: "GET", headers: { authorization: `Bearer ${API_KEY}` } },
      },
    ]);
    expect(out.natsFrom.startsWith(join(dir, "query-range", "node_modules", "nats"))).toBe(true);
    expect(out.results[0]?.status).toBe(503);
    expect(out.results[0]?.body).toMatchObject({ error: { code: "query_unavailable" } });
  });

  it("answers an agent's write from each agent function's own zip", async () => {
    const auth = { authorization: `Bearer ${API_KEY}` };
    const [influx] = (
      await callBundled("influx-write", [
        {
          url: "https://metrics.example/api/v2/write?bucket=b&precision=s",
          init: { method: "POST", headers: auth, body: "bundle_cpu,host=a usage=1 1700000000" },
        },
      ])
    ).results;
    expect(influx).toEqual({ status: 204, body: null });

    const [otlp] = (
      await callBundled("otlp-metrics", [
        {
          url: "https://metrics.example/v1/metrics",
          init: {
            method: "POST",
            headers: { ...auth, "content-type": "application/json" },
            body: JSON.stringify({
              resourceMetrics: [
                {
                  scopeMetrics: [
                    {
                      metrics: [
                        {
                          name: "bundle_otlp",
                          gauge: {
                            dataPoints: [{ timeUnixNano: "1700000000000000000", asDouble: 1 }],
                          },
                        },
                      ],
                    },
                  ],
                },
              ],
            }),
          },
        },
      ])
    ).results;
    expect(otlp).toEqual({ status: 200, body: {} });

    const writeRequest = toBinary(
      WriteRequestSchema,
      create(WriteRequestSchema, {
        timeseries: [
          {
            labels: [{ name: "__name__", value: "bundle_prom" }],
            samples: [{ value: 1, timestamp: 1_700_000_000_000n }],
          },
        ],
      }),
    );
    const [prometheus] = (
      await callBundled("prometheus-write", [
        {
          url: "https://metrics.example/api/v1/write",
          init: {
            method: "POST",
            headers: {
              ...auth,
              "content-type": "application/x-protobuf",
              "content-encoding": "snappy",
            },
          },
          bodyBase64: Buffer.from(compress(writeRequest)).toString("base64"),
        },
      ])
    ).results;
    expect(prometheus).toEqual({ status: 204, body: null });

    // Each is in the stream, on its protocol's subject.
    const subjects = await Promise.all(
      ["metrics.influx", "metrics.otlp", "metrics.prometheus"].map(async (subject) => {
        const message = await jsm.streams.getMessage("METRICS", { last_by_subj: subject });
        const decoded = decodeEnvelope(message.data);
        return decoded.ok ? decoded.envelope.metrics.map((m) => m.name) : decoded.message;
      }),
    );
    expect(subjects).toEqual([["bundle_cpu_usage"], ["bundle_otlp"], ["bundle_prom"]]);
  });
});
