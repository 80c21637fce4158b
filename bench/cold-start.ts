/**
 * Measurement 5: cold start. The functions are built as Netlify builds them (`netlify
 * functions:build`, as test/integration/function-bundle.test.ts does) and the ingest zip is
 * unpacked; then, 10 times, a new Node process imports the bundled function module and calls it
 * with one request, the NATS connection included, up to its 202. Beside it, the same with a
 * process that imports the zip's own `nats`, connects and publishes the same bytes raw.
 * Two clocks: in the process, from before the import to the answer; and from spawning the
 * process to its answer (Node's own start included).
 */
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { unzipSync } from "fflate";
import { PROJECT_ROOT } from "../test/helpers/processes.ts";
import { jsonBody, log, median, round, type BenchNats } from "./support.ts";

export interface ColdStartFigures {
  readonly runs: number;
  /** Median, from before importing the module to the 202 (connecting included). */
  readonly importToAnswerMs: number;
  /** Median, of which importing the module alone. */
  readonly importMs: number;
  /** Median, from spawning the process to the 202. */
  readonly spawnToAnswerMs: number;
}

export interface ColdStartRow {
  readonly setting: string;
  readonly ours: ColdStartFigures;
  readonly baseline: ColdStartFigures;
}

const OURS = `
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
const t0 = performance.now();
const fn = await import(pathToFileURL(process.argv[1]).href);
const t1 = performance.now();
const res = await fn.default(new Request("https://metrics.example/api/v1/metrics", {
  method: "POST", headers: { "content-type": "application/json" }, body: process.env.BODY }));
const t2 = performance.now();
console.log(JSON.stringify({ status: res.status, importMs: t1 - t0, answerMs: t2 - t0 }));
process.exit(0);
`;

const RAW = `
import { performance } from "node:perf_hooks";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
const t0 = performance.now();
const require = createRequire(process.argv[1]);
const { connect } = await import(pathToFileURL(require.resolve("nats")).href);
const t1 = performance.now();
const nc = await connect({ servers: process.env.NATS_URL });
const ack = await nc.jetstream().publish("metrics.json", new TextEncoder().encode(process.env.BODY),
  { msgID: String(Math.random()) });
const t2 = performance.now();
console.log(JSON.stringify({ status: ack.seq > 0 ? 202 : 500, importMs: t1 - t0, answerMs: t2 - t0 }));
process.exit(0);
`;

async function once(
  script: string,
  module: string,
  env: Record<string, string>,
): Promise<{ importMs: number; answerMs: number; spawnMs: number }> {
  const start = performance.now();
  const child = spawn(process.execPath, ["--input-type=module", "--eval", script, module], {
    cwd: dirname(dirname(module)),
    env: { PATH: process.env["PATH"] ?? "", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  let spawnMs = NaN;
  child.stdout.once("data", () => (spawnMs = performance.now() - start));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  await new Promise((resolve) => child.once("exit", resolve));
  clearTimeout(timer);
  const result = JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as {
    status?: number;
    importMs: number;
    answerMs: number;
  };
  if (result.status !== 202) throw new Error(`cold start answered ${String(result.status)}`);
  return { importMs: result.importMs, answerMs: result.answerMs, spawnMs };
}

function summary(samples: { importMs: number; answerMs: number; spawnMs: number }[]) {
  return {
    runs: samples.length,
    importToAnswerMs: round(median(samples.map((s) => s.answerMs)), 1),
    importMs: round(median(samples.map((s) => s.importMs)), 1),
    spawnToAnswerMs: round(median(samples.map((s) => s.spawnMs)), 1),
  };
}

/** Builds the functions' zips and unpacks the ingest one; returns its module's path. */
export async function buildIngestBundle(dir: string): Promise<string> {
  const out = join(dir, "zips");
  const netlify = join(PROJECT_ROOT, "node_modules", ".bin", "netlify");
  await promisify(execFile)(
    netlify,
    ["functions:build", "--src", "functions", "--functions", out],
    {
      cwd: PROJECT_ROOT,
      timeout: 180_000,
    },
  );
  const entries = unzipSync(new Uint8Array(await readFile(join(out, "ingest.zip"))));
  for (const [path, data] of Object.entries(entries)) {
    if (path.endsWith("/")) continue;
    const file = join(dir, "ingest", path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, data);
  }
  return join(dir, "ingest", "functions", "ingest.mjs");
}

export async function measureColdStart(nats: BenchNats, runs = 10): Promise<ColdStartRow> {
  const dir = await mkdtemp(join(tmpdir(), "bench-cold-"));
  try {
    const module = await buildIngestBundle(dir);
    const env = {
      NATS_URL: nats.url,
      INGEST_AUTH: "none",
      LOG_LEVEL: "warn",
      BODY: jsonBody(1),
    };
    const ours = [];
    const baseline = [];
    for (let i = 0; i < runs; i++) {
      ours.push(await once(OURS, module, env));
      baseline.push(await once(RAW, module, env));
    }
    const row = { setting: nats.setting, ours: summary(ours), baseline: summary(baseline) };
    log(
      `cold start: ours ${row.ours.importToAnswerMs} ms (import ${row.ours.importMs}), raw ${row.baseline.importToAnswerMs} ms`,
    );
    return row;
  } finally {
    await rm(dir, { recursive: true, force: true });
    await nats.purge();
  }
}
