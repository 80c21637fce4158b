/**
 * `npm run bench`: every measurement against private servers (a nats-server per NATS setting,
 * scratch databases on the local PostgreSQL), written to bench/results.json, then docs/benchmarks.md
 * and its chart regenerated from it. Not part of the tests. `BENCH_QUICK=1` makes a short run
 * for development (smaller backlogs, shorter loads); its figures are not the published ones.
 * `npm run bench -- --only cold-start` (repeatable; names in PARTS) measures only those parts and
 * prints their results on stdout, leaving bench/results.json and docs/benchmarks.md as they are.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { natsServerBinary } from "../test/helpers/nats-server.ts";
import { PROJECT_ROOT } from "../test/helpers/processes.ts";
import { measureColdStart } from "./cold-start.ts";
import { measureEndToEnd } from "./end-to-end.ts";
import { measureFunctionHeap } from "./function-heap.ts";
import { measureHttpServer } from "./http-server.ts";
import { measureIngestInProcess } from "./ingest-in-process.ts";
import { measureProtocols, PROTOCOLS } from "./protocols.ts";
import { writeFormatted, writeReport } from "./report.ts";
import { log, NATS_SETTINGS, QUICK, round, startBenchNats, type NatsSetting } from "./support.ts";
import { measureRemoteWriteDrain } from "./remote-write-drain.ts";
import { measureWorkerDrain } from "./worker-drain.ts";

const RESULTS = join(PROJECT_ROOT, "bench", "results.json");
/** The parts of a run, by the names `--only` takes; the first three run under both settings. */
const PARTS = [
  "ingest",
  "http",
  "protocols",
  "drain",
  "remote-write-drain",
  "end-to-end",
  "cold-start",
  "function-heap",
] as const;
type Part = (typeof PARTS)[number];
const IN_BOTH_SETTINGS: readonly Part[] = ["ingest", "http", "drain"];

const only = parseArgs({ options: { only: { type: "string", multiple: true } } }).values.only;
const unknown = only?.filter((name) => !(PARTS as readonly string[]).includes(name)) ?? [];
if (unknown.length > 0) {
  console.error(`bench: unknown part ${unknown.join(", ")}; the parts are ${PARTS.join(", ")}`);
  process.exit(2);
}
const wanted = (name: Part) => only === undefined || only.includes(name);

/** `BENCH_PROTOCOLS=influx,otlp` measures only those protocols in the protocols part. */
function protocolsWanted() {
  const names = process.env["BENCH_PROTOCOLS"]?.split(",");
  return names === undefined ? PROTOCOLS : PROTOCOLS.filter((p) => names.includes(p));
}

/**
 * Wait at most this long (BENCH_QUIET_WAIT_MIN, 15 min) for the machine to be quiet (1-minute
 * load below 1.0) before starting; the load is recorded either way.
 */
const QUIET_WAIT_MS = Number(process.env["BENCH_QUIET_WAIT_MIN"] ?? 15) * 60_000;

const sh = (cmd: string, args: string[]) => {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", timeout: 10_000 }).trim();
  } catch {
    return "unknown";
  }
};
const packageVersion = (name: string) =>
  (
    JSON.parse(readFileSync(join(PROJECT_ROOT, "node_modules", name, "package.json"), "utf8")) as {
      version: string;
    }
  ).version;

async function waitForQuiet(): Promise<number> {
  const deadline = Date.now() + (QUICK ? 0 : QUIET_WAIT_MS);
  while ((loadavg()[0] ?? 0) >= 1.0 && Date.now() < deadline) {
    log(`1-minute load ${loadavg()[0]?.toFixed(2)}: waiting for it to fall below 1.0`);
    await sleep(30_000);
  }
  return round(loadavg()[0] ?? NaN, 2);
}

async function part<T>(
  which: Part,
  name: string,
  errors: string[],
  fn: () => Promise<T>,
): Promise<T | null> {
  if (!wanted(which)) return null;
  log(`${name}…`);
  try {
    return await fn();
  } catch (err) {
    log(`${name} failed: ${String(err)}`);
    errors.push(`${name}: ${String(err)}`);
    return null;
  }
}

async function measure(setting: NatsSetting, errors: string[]) {
  const nats = await startBenchNats(setting);
  const full = setting === "default";
  const big = QUICK ? 100 : 1000;
  const small = QUICK ? 1000 : 10_000;
  try {
    const ingest = await part("ingest", `${setting}: ingest in-process`, errors, () =>
      measureIngestInProcess(nats, {
        sizes: full ? [1, 100, 1000] : [1, 1000],
        concurrencies: [1, 64],
      }),
    );
    const http = await part("http", `${setting}: self-hosted server`, errors, () =>
      measureHttpServer(nats, [1, 1000]),
    );
    const protocols = full
      ? await part("protocols", "every protocol beside its peer", errors, () =>
          measureProtocols(nats, protocolsWanted()),
        )
      : null;
    const drain = await part("drain", `${setting}: worker drain`, errors, () =>
      measureWorkerDrain(
        nats,
        full
          ? [
              { store: "sqlite", messages: big, metricsPerMessage: 1000 },
              { store: "sqlite", messages: small, metricsPerMessage: 100 },
              { store: "postgres", messages: big, metricsPerMessage: 1000 },
              { store: "postgres", messages: small, metricsPerMessage: 100 },
            ]
          : [
              { store: "sqlite", messages: big, metricsPerMessage: 1000 },
              { store: "postgres", messages: big, metricsPerMessage: 1000 },
            ],
      ),
    );
    const remoteWriteDrain = full
      ? await part("remote-write-drain", "worker drain into VictoriaMetrics", errors, () =>
          measureRemoteWriteDrain(nats),
        )
      : null;
    const endToEnd = full
      ? await part("end-to-end", "end to end", errors, () => measureEndToEnd(nats, 1000))
      : null;
    const coldStart = full
      ? await part("cold-start", "cold start", errors, () => measureColdStart(nats))
      : null;
    const functionHeap = full
      ? await part("function-heap", "function heap", errors, () =>
          measureFunctionHeap(nats, QUICK ? 10_000 : 100_000),
        )
      : null;
    return {
      setting,
      natsSettings: NATS_SETTINGS[setting],
      ingest,
      http,
      protocols,
      drain,
      remoteWriteDrain,
      endToEnd,
      coldStart,
      functionHeap,
    };
  } finally {
    await nats.stop();
  }
}

const loadBefore = await waitForQuiet();
const startedAt = new Date();
const pg = sh("psql", ["-h", "127.0.0.1", "-U", "postgres", "-tAc", "SHOW server_version"]);
const errors: string[] = [];
const runs = [];
for (const setting of ["default", "durable"] as const) {
  if (setting === "default" || IN_BOTH_SETTINGS.some(wanted)) {
    runs.push(await measure(setting, errors));
  }
}

const results = {
  quick: QUICK,
  startedAt: startedAt.toISOString(),
  finishedAt: new Date().toISOString(),
  machine: {
    nproc: Number(sh("nproc", [])),
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGb: round(totalmem() / 1024 ** 3, 1),
    kernel: sh("uname", ["-sr"]),
    loadAverageBefore: loadBefore,
    loadAverageAfter: round(loadavg()[0] ?? NaN, 2),
  },
  versions: {
    node: process.version,
    natsServer: sh(natsServerBinary(), ["--version"]),
    postgresql: pg,
    packages: Object.fromEntries(
      ["nats", "ajv", "@sinclair/typebox", "srvx", "pg", "pino", "autocannon"].map((p) => [
        p,
        packageVersion(p),
      ]),
    ),
  },
  runs,
  errors,
};
if (only === undefined) {
  await writeFormatted(RESULTS, JSON.stringify(results, null, 2));
  log(`wrote ${RESULTS}`);
  await writeReport(results);
} else {
  // A partial run is not the published one: its results go to stdout only.
  console.log(JSON.stringify(results, null, 2));
}
if (errors.length > 0) process.exitCode = 1;
