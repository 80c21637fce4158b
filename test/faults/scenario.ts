import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect } from "vitest";
import type { EvidenceRecorder } from "./evidence.ts";
import { summary, writeFigures, type ScenarioFigures } from "./figures.ts";
import { outcomeCounts, unprovenAcknowledgements, type Load, type LoadOptions } from "./load.ts";
import { startNats, type NatsSetup } from "./nats-nodes.ts";
import { reconcile, type Reconciliation } from "./reconcile.ts";
import { startSystem, type System, type SystemOptions } from "./system.ts";

/** FAULTS_SHORT=1 (`npm run test:faults -- --short`): smaller loads, for CI. */
export const SHORT = process.env["FAULTS_SHORT"] === "1";

/**
 * Starts the NATS nodes and the system before a scenario file's test, hands them to `use`, and
 * stops both after it (the nodes too when the system failed to start).
 */
export function startForFile(
  natsOptions: Parameters<typeof startNats>[0],
  systemOptions: Omit<SystemOptions, "nats">,
  use: (nats: NatsSetup, system: System) => void,
): void {
  let started: { nats: NatsSetup; system?: System } | undefined;
  beforeAll(async () => {
    const nats = await startNats(natsOptions);
    started = { nats };
    const system = await startSystem({ nats, ...systemOptions });
    started.system = system;
    use(nats, system);
  });
  afterAll(async () => {
    await started?.system?.stop();
    await started?.nats.stop();
  });
}

export function size(full: number, short: number): number {
  return SHORT ? short : full;
}

export interface ScenarioMeta {
  readonly id: string;
  readonly slug: string;
  readonly title: string;
  readonly fault: string;
}

/** The defaults every scenario's load starts from. */
export function loadOptions(
  system: System,
  runId: string,
  overrides: Partial<LoadOptions> = {},
): LoadOptions {
  return {
    base: system.serve.base,
    runId,
    requests: size(3000, 600),
    ratePerSecond: size(150, 60),
    concurrency: 16,
    keyedFraction: 0.7,
    batchFraction: 0.4,
    maxBatch: 50,
    noRetryFraction: 0.1,
    clientTimeoutMs: 10_000,
    retryBudgetMs: 60_000,
    ...overrides,
  };
}

/** ms of the load's clock, from the start of the load; a fault's timeline is written in it. */
export async function at(load: Load, ms: number): Promise<void> {
  const wait = ms - load.now();
  if (wait > 0) await sleep(wait);
}

/**
 * Waits for the load to finish and the backlog to drain, reconciles the database with what the
 * clients were told, writes the scenario's figures and checks them: nothing acknowledged lost,
 * nothing stored twice, nothing refused stored, nothing stored that no request sent.
 */
export async function finish(
  meta: ScenarioMeta,
  system: System,
  nats: NatsSetup,
  load: Load,
  options: LoadOptions,
  measured: {
    recovery: { what: string; ms: number | null }[];
    extra?: Record<string, number | string>;
    replicas?: number;
    /** The worker processes, in words, when more happened to them than running. */
    workers?: string;
    /** How long to wait for the backlog to drain after the load (default 120 s). */
    settleMs?: number;
    /** Records what explains a failure; its evidence is written when the run failed. */
    evidence?: EvidenceRecorder;
    /** Figures measured once the backlog drained (the replicas' state…), added to `extra`. */
    atEnd?: () => Promise<Record<string, number | string>>;
  },
): Promise<Reconciliation> {
  await load.done;
  const loadEnded = load.now();
  const deadline = Date.now() + (measured.settleMs ?? 120_000);
  // Drained: the stream is empty and every acknowledged metric has its row.
  while (Date.now() < deadline) {
    const backlog = await system.backlog().catch(() => -1);
    if (backlog === 0 && reconcile(load.records, await system.rows()).lost === 0) break;
    await sleep(250);
  }
  const drainedAt = load.now();
  const left: Record<string, number | string> = {
    ...(await leftInStream(system)),
    ...(await measured.atEnd?.()),
  };
  // A last look after a moment, for anything a worker was committing.
  await sleep(1000);
  const rows = await system.rows();
  const counts = reconcile(load.records, rows);
  // The story of each request that lost metrics, for the report and the failure message.
  const lostReqs = new Set(counts.examples.lost.map((id) => id.split("/")[0]));
  const lostStories = load.records
    .filter((r) => lostReqs.has(r.req))
    .map(
      (r) =>
        `${r.req} (${r.key === undefined ? "no key" : "key"}, ${r.metrics} metrics): ` +
        r.attempts
          .map(
            (a) =>
              `${a.start}–${a.end} ms ${String(a.status)}${a.code === undefined ? "" : ` ${a.code}`}${a.duplicate === true ? " duplicate" : ""}${a.seq === undefined ? "" : ` seq ${a.seq}`}`,
          )
          .join(", "),
    );
  if (lostStories.length > 0) left["requests that lost metrics"] = lostStories.join("; ");
  const unproven = unprovenAcknowledgements(load.records);
  left["2xx naming no stream sequence"] = unproven;
  const passed =
    unproven === 0 &&
    counts.lost === 0 &&
    counts.duplicated === 0 &&
    counts.refusedStored === 0 &&
    counts.unexpected === 0;
  measured.evidence?.stop();
  if (!passed && measured.evidence) {
    const dir = await measured.evidence
      .write(load.records, rows, load.startedAt)
      .catch((err: unknown) => `not written: ${String(err)}`);
    left["evidence"] = dir;
    console.log(`[faults] ${meta.id}: evidence in ${dir}`);
  }
  const figures: ScenarioFigures = {
    kind: "scenario",
    ...meta,
    short: process.env["FAULTS_SHORT"] === "1",
    date: new Date().toISOString(),
    nats: {
      version: nats.version,
      nodes: nats.nodes.length,
      replicas: measured.replicas ?? 1,
      settings: nats.settings,
    },
    database: system.database,
    workers: measured.workers ?? String(system.workers.length),
    load: {
      requests: options.requests,
      ratePerSecond: options.ratePerSecond,
      concurrency: options.concurrency ?? 16,
      keyedFraction: options.keyedFraction ?? 0.7,
      batchFraction: options.batchFraction ?? 0.4,
      maxBatch: options.maxBatch ?? 50,
      noRetryFraction: options.noRetryFraction ?? 0.1,
      clientTimeoutMs: options.clientTimeoutMs ?? 10_000,
    },
    counts,
    outcomes: outcomeCounts(load.records),
    recovery: [
      ...measured.recovery,
      { what: "end of load → every acknowledged metric stored", ms: drainedAt - loadEnded },
    ],
    extra: { ...measured.extra, ...left },
    durationMs: drainedAt,
    passed,
  };
  // "1b" files as "01b", after "01" and before "02".
  writeFigures(`${/^\d(\D|$)/.test(meta.id) ? `0${meta.id}` : meta.id}-${meta.slug}`, figures);
  console.log(summary(figures));
  const context = `${summary(figures)}\n${JSON.stringify(counts.examples)}\n${system.logs()}`;
  expect(unproven, `${context}\na 2xx must name the stream sequence holding its message`).toBe(0);
  expect(counts.lost, context).toBe(0);
  expect(counts.duplicated, context).toBe(0);
  expect(counts.refusedStored, context).toBe(0);
  expect(counts.unexpected, context).toBe(0);
  expect(counts.accepted, context).toBeGreaterThan(0);
  return counts;
}

/** What the stream and the consumer still hold once the run is over (all 0 when drained). */
async function leftInStream(system: System): Promise<Record<string, number | string>> {
  try {
    const jsm = await system.nc.jetstreamManager({ timeout: 5000 });
    const stream = await jsm.streams.info(system.config.stream.name);
    const consumer = await jsm.consumers.info(
      system.config.stream.name,
      system.config.consumer.name,
    );
    const left: Record<string, number | string> = {
      "messages left in the stream": stream.state.messages,
      "consumer: pending / ack pending / redelivered": `${consumer.num_pending} / ${consumer.num_ack_pending} / ${consumer.num_redelivered}`,
    };
    if (stream.state.messages > 0) {
      const seqs: string[] = [];
      for (
        let seq = stream.state.first_seq;
        seq <= stream.state.last_seq && seqs.length < 5;
        seq++
      ) {
        const m = await jsm.streams
          .getMessage(system.config.stream.name, { seq })
          .catch(() => undefined);
        if (m) seqs.push(`${seq}:${m.header.get("Nats-Msg-Id")}`);
      }
      left["first messages left (seq:id)"] = seqs.join(", ");
      left["consumer: ack floor / delivered (stream seq)"] =
        `${consumer.ack_floor.stream_seq} / ${consumer.delivered.stream_seq}`;
    }
    return left;
  } catch (err) {
    return { "stream state": `unavailable: ${String(err)}` };
  }
}
