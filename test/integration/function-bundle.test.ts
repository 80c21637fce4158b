import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { unzipSync } from "fflate";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeEnvelope } from "../../shared/envelope.ts";
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
const API_KEY = "bundle-test-key";
const SEED_BODY = '{"data": {"value": 123.45}}';

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
  for (const name of ["ingest", "health"]) {
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
  const res = await fn.default(new Request(spec.url, spec.init));
  results.push({ status: res.status, body: await res.json() });
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
  results: { status: number; body: Record<string, unknown> }[];
}

async function callBundled(
  name: string,
  requests: { url: string; init: RequestInit }[],
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
  it("lists both functions on their paths, on Node 24, with the ingest function's rate limit", () => {
    const byName = new Map(manifest.functions.map((f) => [f.name, f]));
    expect(byName.get("ingest")?.routes.map((r) => r.literal)).toEqual(["/api/v1/metrics"]);
    expect(byName.get("health")?.routes.map((r) => r.literal)).toEqual(["/api/v1/health"]);
    for (const f of manifest.functions) expect(f.runtimeVersion).toBe("nodejs24.x");

    const rule = byName.get("ingest")?.trafficRules?.action;
    expect(rule?.type).toBe("rate_limit");
    expect(rule?.config.rateLimitConfig).toMatchObject({ windowLimit: 600, windowSize: 60 });
    expect(rule?.config.aggregate.keys.map((k) => k.type).sort()).toEqual(["domain", "ip"]);
    expect(byName.get("health")?.trafficRules).toBeUndefined();
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
});
