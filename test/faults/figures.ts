import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PROJECT_ROOT } from "../helpers/processes.ts";
import type { Reconciliation } from "./reconcile.ts";

/**
 * The figures each scenario writes, one JSON file each, from which test/faults/report.ts makes
 * docs/reliability.md. The full suite writes them to test/faults/results/; the short one (CI) to a
 * directory of its own (FAULTS_RESULTS_DIR), so it never rewrites the committed report.
 */
export interface ScenarioFigures {
  readonly kind: "scenario";
  readonly id: string;
  readonly slug: string;
  readonly title: string;
  /** What was done, in a sentence or two. */
  readonly fault: string;
  readonly short: boolean;
  readonly date: string;
  readonly nats: { version: string; nodes: number; replicas: number; settings: string };
  readonly database: string;
  readonly workers: string;
  readonly load: {
    requests: number;
    ratePerSecond: number;
    concurrency: number;
    keyedFraction: number;
    batchFraction: number;
    maxBatch: number;
    noRetryFraction: number;
    clientTimeoutMs: number;
  };
  readonly counts: Reconciliation;
  /** Every attempt's outcome, counted: `202`, `503 stream_full`, `timeout`… */
  readonly outcomes: Record<string, number>;
  readonly recovery: { what: string; ms: number | null }[];
  /** Anything else the scenario measured (dead letters, rows at the kill…). */
  readonly extra: Record<string, number | string>;
  readonly durationMs: number;
  readonly passed: boolean;
}

export interface ThroughputFigures {
  readonly kind: "throughput";
  readonly short: boolean;
  readonly date: string;
  readonly version: string;
  readonly payloadBytes: number;
  readonly seconds: number;
  readonly inFlight: number;
  readonly results: { sync: string; awaitedPerSecond: number; inFlightPerSecond: number }[];
}

/** The run as a whole, written by test/faults/run.ts. */
export interface RunFigures {
  readonly kind: "run";
  readonly short: boolean;
  readonly date: string;
  readonly durationMs: number;
  readonly passed: boolean;
}

export type Figures = ScenarioFigures | ThroughputFigures | RunFigures;

export function resultsDir(): string {
  return process.env["FAULTS_RESULTS_DIR"] ?? join(PROJECT_ROOT, "test/faults/results");
}

export function writeFigures(name: string, figures: Figures): string {
  const dir = resultsDir();
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(figures, null, 2)}\n`);
  return file;
}

export function readFigures(dir = resultsDir()): Figures[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as Figures);
}

/** One line of a scenario's figures, for the console. */
export function summary(f: ScenarioFigures): string {
  const c = f.counts;
  return (
    `[faults] ${f.id}. ${f.title}: ${c.requests} requests, ${c.accepted} 2xx, ${c.refused} refused, ` +
    `${c.unknown} unknown; ${c.metricsAcknowledged} metrics acknowledged, ${c.stored} stored, ` +
    `${c.lost} lost, ${c.duplicated} duplicated, ${c.refusedStored} refused-but-stored; ` +
    `outcomes ${JSON.stringify(f.outcomes)}; recovery ${f.recovery
      .map((r) => `${r.what}: ${r.ms === null ? "—" : `${r.ms} ms`}`)
      .join("; ")}`
  );
}
