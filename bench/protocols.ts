/**
 * Every ingest protocol through the self-hosted server (`npm run serve`), beside a peer that
 * takes the same bodies under the same load (autocannon, 16 connections, every request a
 * distinct body of 2,000 samples): VictoriaMetrics 1.79 (Debian bookworm) for InfluxDB line
 * protocol and Prometheus remote write, VictoriaMetrics 1.112 (trixie) for OTLP, and for the
 * JSON API the bare `node:http` server that parses and publishes raw (bench/raw-http-server.ts).
 * Each row takes turns, ours then the peer's, `ROUNDS` times, and each side keeps its best.
 *
 * `BENCH_CPU_PROF=<dir>` runs the server under `--cpu-prof`, writing each row's profiles (one per
 * process) into `<dir>/<protocol>-<round>/`.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import autocannon from "autocannon";
import { freePort, PROJECT_ROOT } from "../test/helpers/processes.ts";
import { startHttpProcess, treeUsage, type TreeUsage } from "./processes.ts";
import { bodyPool, type BodyPool, type Protocol } from "./protocol-bodies.ts";
import { log, QUICK, round, type BenchNats } from "./support.ts";

export interface ProtocolFigures {
  readonly requestsPerSecond: number;
  readonly samplesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  readonly errors: number;
  /** CPU time (user and system) its processes spent per request answered 2xx. */
  readonly cpuMsPerRequest?: number;
  /**
   * Page faults its processes took per request answered 2xx: on these machines each costs
   * ~12 µs of system time (bench/notes.md).
   */
  readonly pageFaultsPerRequest?: number;
}

export interface ProtocolRow {
  readonly protocol: Protocol;
  readonly samplesPerRequest: number;
  readonly connections: number;
  /** What the row is measured against: a VictoriaMetrics version, or the bare node:http server. */
  readonly peer: string;
  /** Our server processes (`SERVE_PROCESSES`): see `serverProcesses`. */
  readonly processes?: number;
  readonly ours: ProtocolFigures;
  readonly peerFigures: ProtocolFigures;
  /** Our samples/s over the peer's. */
  readonly ratio: number;
  /** Our p99 over the peer's. */
  readonly p99Ratio: number;
}

const CONNECTIONS = 16;
const ROUNDS = QUICK ? 1 : 2;
const SECONDS = QUICK ? 3 : 5;
/** Distinct bodies made for each protocol: more than either side sends in a row, mostly. */
const POOL = QUICK ? 1500 : 4000;

/** VictoriaMetrics binaries fetched into .tools/ (scripts/get-debian-binary.sh). */
const VM = {
  "1.79": {
    bin: join(PROJECT_ROOT, ".tools", "victoria-metrics", "victoria-metrics"),
    fetch: ["bookworm", "victoria-metrics", "usr/bin/victoria-metrics"],
  },
  "1.112": {
    bin: join(PROJECT_ROOT, ".tools", "victoria-metrics-1.112", "victoria-metrics"),
    fetch: ["trixie", "victoria-metrics", "usr/bin/victoria-metrics", "victoria-metrics-1.112"],
  },
} as const;
type VmVersion = keyof typeof VM;

interface Peer {
  readonly name: string;
  /** Our path, and the peer's path for the same body. */
  readonly ours: string;
  readonly theirs: string;
  readonly start: "raw" | VmVersion;
}

const INFLUX_PATH = "/api/v2/write?bucket=bench&org=acme&precision=ns";
const PEERS: Readonly<Record<Protocol, Peer>> = {
  json: { name: "bare node:http", ours: "/api/v1/metrics", theirs: "/", start: "raw" },
  ndjson: { name: "bare node:http", ours: "/api/v1/metrics", theirs: "/", start: "raw" },
  influx: { name: "VictoriaMetrics 1.79", ours: INFLUX_PATH, theirs: INFLUX_PATH, start: "1.79" },
  "influx-gzip": {
    name: "VictoriaMetrics 1.79",
    ours: INFLUX_PATH,
    theirs: INFLUX_PATH,
    start: "1.79",
  },
  "remote-write": {
    name: "VictoriaMetrics 1.79",
    ours: "/api/v1/write",
    theirs: "/api/v1/write",
    start: "1.79",
  },
  otlp: {
    name: "VictoriaMetrics 1.112",
    ours: "/v1/metrics",
    theirs: "/opentelemetry/v1/metrics",
    start: "1.112",
  },
};

export const PROTOCOLS: readonly Protocol[] = [
  "json",
  "ndjson",
  "influx",
  "influx-gzip",
  "remote-write",
  "otlp",
];

/**
 * Sends the pool's bodies in turn, one per request, for `SECONDS` after a second of warm-up,
 * reading what the server's processes used over those seconds from `usage`.
 */
async function load(url: string, pool: BodyPool, usage: () => TreeUsage): Promise<ProtocolFigures> {
  let next = 0;
  const options = {
    url,
    method: "POST" as const,
    headers: pool.headers,
    connections: CONNECTIONS,
    requests: [
      {
        setupRequest: (req: object) => ({
          ...req,
          body: pool.bodies[next++ % pool.bodies.length],
        }),
      },
    ],
  };
  await autocannon({ ...options, duration: 1 });
  const before = usage();
  const result = await autocannon({ ...options, duration: SECONDS });
  const after = usage();
  const ok = result.requests.total - result.non2xx;
  const rps = ok / result.duration;
  if (next > pool.bodies.length) {
    log(`${pool.protocol}: ${next} requests, ${pool.bodies.length} distinct bodies (repeated)`);
  }
  return {
    requestsPerSecond: round(rps, 1),
    samplesPerSecond: round(rps * pool.samples),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    cpuMsPerRequest: round(((after.cpuSeconds - before.cpuSeconds) * 1000) / ok, 2),
    pageFaultsPerRequest: round((after.pageFaults - before.pageFaults) / ok, 1),
  };
}

interface Server {
  readonly base: string;
  /** The server's process; a process pool's others are below it. */
  readonly pid: number;
  stop(): Promise<void>;
}

/** A VictoriaMetrics of `version` on a free port with a scratch data folder, once healthy. */
async function startVictoriaMetrics(version: VmVersion): Promise<Server> {
  const { bin, fetch: args } = VM[version];
  if (!existsSync(bin)) {
    const how = `scripts/get-debian-binary.sh ${args.join(" ")}`;
    log(`VictoriaMetrics ${version} is not in .tools/: fetching it from Debian (${how})`);
    try {
      execFileSync(join(PROJECT_ROOT, "scripts", "get-debian-binary.sh"), args, {
        stdio: ["ignore", "ignore", "inherit"],
      });
    } catch (err) {
      throw new Error(`VictoriaMetrics ${version} is missing at ${bin} and \`${how}\` failed`, {
        cause: err,
      });
    }
  }
  const dir = await mkdtemp(join(tmpdir(), "bench-vm-"));
  const port = await freePort();
  const child = spawn(
    bin,
    [
      `-storageDataPath=${dir}`,
      `-httpListenAddr=127.0.0.1:${port}`,
      "-retentionPeriod=100y",
      "-loggerLevel=ERROR",
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`${base}/health`)).ok) return { base, pid: child.pid ?? 0, stop };
    } catch {
      await sleep(50);
    }
  }
  await stop();
  throw new Error(`VictoriaMetrics ${version} did not answer /health within 15 s`);
}

async function startPeer(peer: Peer, nats: BenchNats): Promise<Server> {
  if (peer.start !== "raw") return startVictoriaMetrics(peer.start);
  const raw = await startHttpProcess("bench/raw-http-server.ts", { NATS_URL: nats.url });
  return { base: raw.base, pid: raw.pid, stop: () => raw.stop() };
}

/**
 * Our server processes beside `peer`: as many as the machine's cores beside VictoriaMetrics,
 * which uses every core; one beside the bare node:http server, which is one process.
 */
function serverProcesses(peer: Peer): number {
  return peer.start === "raw" ? 1 : availableParallelism();
}

async function startOurs(
  nats: BenchNats,
  protocol: Protocol,
  round: number,
  processes: number,
): Promise<Server> {
  const profiles = process.env["BENCH_CPU_PROF"];
  const env: Record<string, string> = {
    NATS_URL: nats.url,
    INGEST_AUTH: "none",
    SERVE_PROCESSES: String(processes),
  };
  if (profiles !== undefined) {
    env["NODE_OPTIONS"] = `--cpu-prof --cpu-prof-dir=${join(profiles, `${protocol}-${round}`)}`;
  }
  const server = await startHttpProcess("server/main.ts", env);
  return { base: server.base, pid: server.pid, stop: () => server.stop() };
}

async function measureSide(start: () => Promise<Server>, path: string, pool: BodyPool) {
  const server = await start();
  try {
    return await load(`${server.base}${path}`, pool, () => treeUsage(server.pid));
  } finally {
    await server.stop();
  }
}

const better = (a: ProtocolFigures | undefined, b: ProtocolFigures) =>
  a === undefined || b.samplesPerSecond > a.samplesPerSecond ? b : a;

export async function measureProtocols(
  nats: BenchNats,
  protocols: readonly Protocol[] = PROTOCOLS,
): Promise<ProtocolRow[]> {
  const rows: ProtocolRow[] = [];
  for (const protocol of protocols) {
    const peer = PEERS[protocol];
    const processes = serverProcesses(peer);
    const pool = bodyPool(protocol, POOL);
    let ours: ProtocolFigures | undefined;
    let theirs: ProtocolFigures | undefined;
    for (let r = 0; r < ROUNDS; r++) {
      await nats.purge();
      const start = () => startOurs(nats, protocol, r, processes);
      ours = better(ours, await measureSide(start, peer.ours, pool));
      await nats.purge();
      theirs = better(theirs, await measureSide(() => startPeer(peer, nats), peer.theirs, pool));
    }
    if (ours === undefined || theirs === undefined) continue;
    const row: ProtocolRow = {
      protocol,
      samplesPerRequest: pool.samples,
      connections: CONNECTIONS,
      peer: peer.name,
      processes,
      ours,
      peerFigures: theirs,
      ratio: round(ours.samplesPerSecond / theirs.samplesPerSecond, 3),
      p99Ratio: round(ours.p99Ms / theirs.p99Ms, 2),
    };
    log(
      `${protocol}: ours ${ours.samplesPerSecond} samples/s p99 ${ours.p99Ms} ms (${ours.non2xx} non-2xx), ${peer.name} ${theirs.samplesPerSecond} samples/s p99 ${theirs.p99Ms} ms (${theirs.non2xx} non-2xx): ${row.ratio}×`,
    );
    rows.push(row);
  }
  await nats.purge();
  return rows;
}
