import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT, freePort, startChild, type Child } from "./processes.ts";
import { waitFor } from "./wait.ts";

/** A remote-write receiver started by a test: on a free port, its data in a temp dir. */
export interface Receiver {
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
  readonly port: number;
  /** Where remote write is posted. */
  readonly writeUrl: string;
  /** Its process, while it runs (the benchmarks read its CPU time). */
  pid(): number | undefined;
  output(): string;
  /** Stops it (its data kept) and, on `start()`, starts it again on the same port and data. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

const VICTORIA_METRICS =
  process.env["VICTORIA_METRICS_BIN"] ??
  join(PROJECT_ROOT, ".tools/victoria-metrics/victoria-metrics");
const PROMETHEUS =
  process.env["PROMETHEUS_BIN"] ?? join(PROJECT_ROOT, ".tools/prometheus/prometheus");

function binary(path: string, what: string, variable: string): string {
  if (!existsSync(path)) {
    throw new Error(
      `${what} not found at ${path}: npm run test:tools fetches Debian's into .tools/ (or set ${variable}); this test needs a real ${what}`,
    );
  }
  return path;
}

async function startReceiver(
  name: string,
  command: string,
  argsOf: (dir: string, port: number) => Promise<string[]>,
  readyPath: string,
  writePath: string,
): Promise<Receiver> {
  const dir = await mkdtemp(join(tmpdir(), `${name}-`));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const args = await argsOf(dir, port);
  let child: Child | undefined;
  async function start(): Promise<void> {
    const started = startChild(command, args, {});
    child = started;
    await waitFor(
      `${name} to be ready`,
      async () => {
        if (started.process.exitCode !== null) {
          throw new Error(`${name} exited at start:\n${started.output()}`);
        }
        const res = await fetch(`${base}${readyPath}`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      },
      30_000,
    );
  }
  async function stop(): Promise<void> {
    await child?.stop();
    child = undefined;
  }
  await start();
  return {
    base,
    port,
    writeUrl: `${base}${writePath}`,
    pid: () => child?.process.pid,
    output: () => child?.output() ?? "",
    stop,
    start,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Debian's VictoriaMetrics (1.79), deduplicating samples of a series in the same millisecond
 * (`-dedup.minScrapeInterval=1ms`), as docs/remote-write.md asks of a deployment.
 */
export function startVictoriaMetrics(): Promise<Receiver> {
  const command = binary(VICTORIA_METRICS, "VictoriaMetrics", "VICTORIA_METRICS_BIN");
  return startReceiver(
    "victoria-metrics",
    command,
    (dir, port) =>
      Promise.resolve([
        `-storageDataPath=${join(dir, "data")}`,
        `-httpListenAddr=127.0.0.1:${port}`,
        "-dedup.minScrapeInterval=1ms",
        // Samples of any age: the tests send timestamps from the past.
        "-retentionPeriod=100y",
        "-search.latencyOffset=0s",
        // Its answers for times long past are cached as final: a read made while samples are
        // still arriving would be given again to every later read of the same query.
        "-search.disableCache",
        "-loggerLevel=ERROR",
      ]),
    "/health",
    "/api/v1/write",
  );
}

/** Debian's Prometheus (2.42) as a remote-write receiver, scraping nothing. */
export function startPrometheusReceiver(): Promise<Receiver> {
  const command = binary(PROMETHEUS, "Prometheus", "PROMETHEUS_BIN");
  return startReceiver(
    "prometheus",
    command,
    async (dir, port) => {
      const config = join(dir, "prometheus.yml");
      await writeFile(config, "global:\n  scrape_interval: 1m\n");
      return [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--web.enable-remote-write-receiver",
        "--log.level=warn",
      ];
    },
    "/-/ready",
    "/api/v1/write",
  );
}

/** One sample as a receiver's API gives it back: its labels as sorted text, time and value. */
export interface StoredSample {
  readonly labels: string;
  readonly timeMs: number;
  readonly value: number;
}

export function labelsText(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((key) => `${key}=${labels[key]}`)
    .join(",");
}

const bySample = (a: StoredSample, b: StoredSample) =>
  a.labels < b.labels ? -1 : a.labels > b.labels ? 1 : a.timeMs - b.timeMs;

/** Every raw sample VictoriaMetrics holds whose series matches `match` (`/api/v1/export`). */
export async function exportedSamples(vm: Receiver, match: string): Promise<StoredSample[]> {
  const url = new URL("/api/v1/export", vm.base);
  url.searchParams.set("match[]", match);
  url.searchParams.set("start", "0");
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`export answered ${res.status}: ${await res.text()}`);
  const samples: StoredSample[] = [];
  for (const line of (await res.text()).split("\n")) {
    if (line.trim() === "") continue;
    const { metric, values, timestamps } = JSON.parse(line) as {
      metric: Record<string, string>;
      values: number[];
      timestamps: number[];
    };
    const labels = labelsText(metric);
    timestamps.forEach((timeMs, i) => samples.push({ labels, timeMs, value: values[i] ?? NaN }));
  }
  return samples.sort(bySample);
}

/** Every raw sample Prometheus holds whose series matches `selector`, in `[startMs, endMs]`. */
export async function prometheusSamples(
  prometheus: Receiver,
  selector: string,
  startMs: number,
  endMs: number,
): Promise<StoredSample[]> {
  const url = new URL("/api/v1/query", prometheus.base);
  url.searchParams.set("query", `${selector}[${endMs - startMs + 1}ms]`);
  url.searchParams.set("time", String(endMs / 1000));
  const res = await fetch(url);
  const body = (await res.json()) as {
    status: string;
    error?: string;
    data: { result: { metric: Record<string, string>; values: [number, string][] }[] };
  };
  if (body.status !== "success") throw new Error(`query failed: ${body.error ?? res.status}`);
  return body.data.result
    .flatMap(({ metric, values }) =>
      values.map(([seconds, value]) => ({
        labels: labelsText(metric),
        timeMs: Math.round(seconds * 1000),
        value: Number(value),
      })),
    )
    .sort(bySample);
}
