/**
 * Writes docs/benchmarks.md and bench/throughput.svg from bench/results.json: every figure of ours
 * beside its same-run baseline, the ratio, and the issue's goal marked met or missed.
 * `node bench/report.ts` regenerates both from the stored results without measuring again.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { format, resolveConfig } from "prettier";
import { withTableOfContents } from "../scripts/markdown-toc.ts";
import { PROJECT_ROOT } from "../test/helpers/processes.ts";
import type { ColdStartRow } from "./cold-start.ts";
import type { EndToEndRow } from "./end-to-end.ts";
import type { HeapRow } from "./function-heap.ts";
import type { HttpRow } from "./http-server.ts";
import type { ProtocolRow } from "./protocols.ts";
import type { IngestRow } from "./ingest-in-process.ts";
import type { DrainRow } from "./worker-drain.ts";
import type { DrainMessages, DrainTarget, RemoteWriteDrainRow } from "./remote-write-drain.ts";

export interface Run {
  readonly setting: string;
  readonly natsSettings: string;
  readonly ingest: IngestRow[] | null;
  readonly http: HttpRow[] | null;
  readonly protocols?: ProtocolRow[] | null;
  readonly drain: DrainRow[] | null;
  /** Absent from runs made before it was measured. */
  readonly remoteWriteDrain?: RemoteWriteDrainRow | null;
  readonly endToEnd: EndToEndRow | null;
  readonly coldStart: ColdStartRow | null;
  readonly functionHeap: HeapRow | null;
}

export interface Results {
  readonly quick: boolean;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: {
    nproc: number;
    cpuModel: string;
    memoryGb: number;
    kernel: string;
    loadAverageBefore: number;
    loadAverageAfter: number;
  };
  readonly versions: {
    node: string;
    natsServer: string;
    postgresql: string;
    packages: Record<string, string>;
  };
  readonly runs: readonly Run[];
  readonly errors: readonly string[];
  /** Set when part of the figures was measured again after the run, and when. */
  readonly remeasured?: string;
}

const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || Number.isNaN(n)
    ? "–"
    : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ratio = (ours: number, base: number) => (base > 0 ? ours / base : NaN);
/** Two figures of one kind, ours then the peer's; "–" when neither was measured. */
const bothSides = (ours: number | undefined, peer: number | undefined, digits: number) =>
  ours === undefined && peer === undefined ? "–" : `${fmt(ours, digits)} / ${fmt(peer, digits)}`;

/** The largest and smallest of what was measured; undefined when nothing was. */
const maxOf = (values: readonly (number | undefined)[] | undefined) => extreme(values, Math.max);
const minOf = (values: readonly (number | undefined)[] | undefined) => extreme(values, Math.min);
function extreme(
  values: readonly (number | undefined)[] | undefined,
  pick: (...n: number[]) => number,
): number | undefined {
  const measured = (values ?? []).filter((v): v is number => v !== undefined && !Number.isNaN(v));
  return measured.length === 0 ? undefined : pick(...measured);
}

/** A worker drain's samples/s over VictoriaMetrics' direct ingest of the same samples. */
function drainRatio(
  row: RemoteWriteDrainRow | null | undefined,
  target: DrainTarget,
  messages: DrainMessages,
): number | undefined {
  const drain = row?.drains.find((d) => d.target === target && d.messages === messages);
  return drain && row ? ratio(drain.samplesPerSecond, row.direct.samplesPerSecond) : undefined;
}

interface Goal {
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean | undefined;
  /** By how much it was missed, when it was. */
  readonly by: string;
}

/** At least `target`: met, or missed by the shortfall as a share of the target. */
function atLeast(goal: string, value: number | undefined, target: number, unit: string): Goal {
  if (value === undefined || Number.isNaN(value)) {
    return { goal, measured: "not measured", met: undefined, by: "" };
  }
  const digits = target < 10 ? 2 : 0;
  const met = value >= target;
  return {
    goal,
    measured: `${fmt(value, digits)}${unit}`,
    met,
    by: met
      ? ""
      : `${fmt(target - value, digits)}${unit} short (${fmt((1 - value / target) * 100)}%)`,
  };
}

function atMost(goal: string, value: number | undefined, target: number, unit: string): Goal {
  if (value === undefined || Number.isNaN(value)) {
    return { goal, measured: "not measured", met: undefined, by: "" };
  }
  const met = value <= target;
  return {
    goal,
    measured: `${fmt(value, 1)}${unit}`,
    met,
    by: met ? "" : `${fmt(value - target, 1)}${unit} over (${fmt(value / target, 1)}× the goal)`,
  };
}

function goals(results: Results): Goal[] {
  const def = results.runs.find((r) => r.setting === "default");
  const dur = results.runs.find((r) => r.setting === "durable");
  const inProc = (run: Run | undefined, size: number, c: number) =>
    run?.ingest?.find((r) => r.metricsPerRequest === size && r.concurrency === c);
  const http = (run: Run | undefined, size: number) =>
    run?.http?.find((r) => r.metricsPerRequest === size);
  const single = inProc(def, 1, 64);
  const singleHttp = http(def, 1);
  const drains = def?.drain ?? [];
  const worst = (store: string) => {
    const rows = drains.filter((d) => d.store === store);
    return rows.length === 0 ? undefined : Math.min(...rows.map((d) => d.ours.metricsPerSecond));
  };
  const worstRatio =
    drains.length === 0
      ? undefined
      : Math.min(...drains.map((d) => ratio(d.ours.metricsPerSecond, d.baseline.metricsPerSecond)));
  const durableKeep = (size: number) => {
    const a = inProc(dur, size, 64);
    const b = inProc(def, size, 64);
    return a && b ? ratio(a.ours.metricsPerSecond, b.ours.metricsPerSecond) : undefined;
  };
  const durableHttpKeep = () => {
    const a = http(dur, 1000);
    const b = http(def, 1000);
    return a && b ? ratio(a.ours.metricsPerSecond, b.ours.metricsPerSecond) : undefined;
  };
  const protocol = (name: string) => def?.protocols?.find((r) => r.protocol === name);
  const protocolGoals = PROTOCOL_GOALS.flatMap(({ protocol: name, label, target }) => [
    atLeast(
      `${label} ≥ ${target} × ${protocol(name)?.peer ?? "its peer"}'s samples/s`,
      protocol(name)?.ratio,
      target,
      "×",
    ),
    atMost(`${label}: p99 ≤ 2 × the peer's`, protocol(name)?.p99Ratio, 2, "×"),
  ]);
  return [
    ...protocolGoals,
    atLeast(
      "single-metric requests ≥ 0.8 × raw publish, in-process, 64 concurrent",
      single && ratio(single.ours.requestsPerSecond, single.baseline.requestsPerSecond),
      0.8,
      "×",
    ),
    atLeast(
      "single-metric requests ≥ 0.8 × raw server, over HTTP, 64 connections",
      singleHttp && ratio(singleHttp.ours.requestsPerSecond, singleHttp.baseline.requestsPerSecond),
      0.8,
      "×",
    ),
    atLeast(
      "batches of 1,000 in-process ≥ 500,000 metrics/s (64 concurrent)",
      inProc(def, 1000, 64)?.ours.metricsPerSecond,
      500_000,
      " metrics/s",
    ),
    atLeast(
      "batches of 1,000 through the self-hosted server ≥ 300,000 metrics/s",
      http(def, 1000)?.ours.metricsPerSecond,
      300_000,
      " metrics/s",
    ),
    atLeast(
      "durable setting: batches of 1,000 in-process keep ≥ 0.5 × default throughput",
      durableKeep(1000),
      0.5,
      "×",
    ),
    atLeast(
      "durable setting: batches of 1,000 over HTTP keep ≥ 0.5 × default throughput",
      durableHttpKeep(),
      0.5,
      "×",
    ),
    atLeast("worker ≥ 0.8 × raw consume → insert → ack (worst case)", worstRatio, 0.8, "×"),
    atLeast("worker into SQLite ≥ 200,000 metrics/s (worst shape)", worst("sqlite"), 200_000, "/s"),
    atLeast(
      "worker into PostgreSQL ≥ 100,000 metrics/s (worst shape)",
      worst("postgres"),
      100_000,
      "/s",
    ),
    atMost("end to end p99 ≤ 50 ms at 1,000 requests/s", def?.endToEnd?.ours.p99Ms, 50, " ms"),
    atMost(
      "cold start ≤ 100 ms to the first 202 (import + connect + answer, median of 10)",
      def?.coldStart?.ours.importToAnswerMs,
      100,
      " ms",
    ),
    ...(["json", "agent", "agent-2000"] as const).map((messages) =>
      atLeast(
        `worker into VictoriaMetrics ≥ 0.5 × VictoriaMetrics ingesting the same samples directly (${messages} messages)`,
        drainRatio(def?.remoteWriteDrain, "victoriametrics", messages),
        0.5,
        "×",
      ),
    ),
    atMost(
      "worker peak RSS ≤ 200 MB draining a million samples into VictoriaMetrics",
      maxOf(
        def?.remoteWriteDrain?.drains
          .filter((d) => d.target === "victoriametrics")
          .map((d) => d.peakRssMb),
      ),
      200,
      " MB",
    ),
    atLeast(
      "worker into SQLite ≥ 0.25 × VictoriaMetrics ingesting the same samples (worst of its backlogs)",
      minOf(
        (["json", "agent", "agent-2000"] as const).map((m) =>
          drainRatio(def?.remoteWriteDrain, "sqlite", m),
        ),
      ),
      0.25,
      "×",
    ),
    atLeast(
      "worker into PostgreSQL ≥ 0.15 × VictoriaMetrics ingesting the same samples (worst of its backlogs)",
      minOf(
        (["json", "agent", "agent-2000"] as const).map((m) =>
          drainRatio(def?.remoteWriteDrain, "postgres", m),
        ),
      ),
      0.15,
      "×",
    ),
    atMost(
      "worker peak RSS ≤ 200 MB draining a million metrics (largest)",
      drains.length === 0 ? undefined : Math.max(...drains.map((d) => d.ours.peakRssMb)),
      200,
      " MB",
    ),
  ];
}

/** The protocols' goals: our samples/s over the peer's, from the same run. */
const PROTOCOL_GOALS = [
  { protocol: "influx", label: "InfluxDB line protocol", target: 0.5 },
  { protocol: "influx-gzip", label: "InfluxDB line protocol, gzip", target: 0.5 },
  { protocol: "remote-write", label: "Prometheus remote write", target: 0.5 },
  { protocol: "otlp", label: "OTLP/HTTP protobuf", target: 0.5 },
  { protocol: "json", label: "JSON batches of 2,000", target: 0.8 },
] as const;

const mark = (g: Goal) => (g.met === undefined ? "–" : g.met ? "**met**" : "**missed**");

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `| ${head.map((h) => (/^[A-Za-z ]/.test(h) ? "---" : "--:")).join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

function runSections(run: Run): string {
  const out: string[] = [`## NATS setting: ${run.setting}`, "", `\`${run.natsSettings}\``, ""];
  if (run.ingest) {
    out.push(
      "### Ingest handler in-process, warm connection",
      "",
      "Baseline: raw nats.js `js.publish()` of the same body bytes, awaiting each PubAck, with a `Nats-Msg-Id`, at the same concurrency, over a connection with the handler's options.",
      "",
      table(
        [
          "metrics/request",
          "concurrent",
          "ours req/s",
          "raw req/s",
          "ratio",
          "ours metrics/s",
          "raw metrics/s",
          "ours p50 / p99 ms",
          "raw p50 / p99 ms",
        ],
        run.ingest.map((r) => [
          fmt(r.metricsPerRequest),
          fmt(r.concurrency),
          fmt(r.ours.requestsPerSecond),
          fmt(r.baseline.requestsPerSecond),
          fmt(ratio(r.ours.requestsPerSecond, r.baseline.requestsPerSecond), 2),
          fmt(r.ours.metricsPerSecond),
          fmt(r.baseline.metricsPerSecond),
          `${fmt(r.ours.p50Ms, 2)} / ${fmt(r.ours.p99Ms, 2)}`,
          `${fmt(r.baseline.p50Ms, 2)} / ${fmt(r.baseline.p99Ms, 2)}`,
        ]),
      ),
      "",
    );
  }
  if (run.protocols && run.protocols.length > 0) {
    out.push(
      "### Every protocol beside its peer",
      "",
      "Each request a distinct body of 2,000 samples (its own timestamps), the same bodies to both sides, autocannon with 16 connections on the same two cores; each row alternates ours and the peer's and keeps each side's best (bench/protocols.ts). The peer of line protocol and remote write is VictoriaMetrics 1.79 (Debian bookworm), of OTLP VictoriaMetrics 1.112 (trixie), of JSON and NDJSON the bare `node:http` server that parses the body and publishes it raw. Ours runs as many server processes (`SERVE_PROCESSES`) as the machine has cores beside VictoriaMetrics, which uses them all, and one beside the one-process `node:http` server.",
      "",
      table(
        [
          "Protocol",
          "Peer",
          "ours processes",
          "ours samples/s",
          "ours p99 ms",
          "peer samples/s",
          "peer p99 ms",
          "ratio",
          "p99 ratio",
          "CPU ms / request, ours / peer",
          "page faults / request, ours / peer",
        ],
        run.protocols.map((r) => [
          r.protocol,
          r.peer,
          r.processes === undefined ? "1" : String(r.processes),
          fmt(r.ours.samplesPerSecond),
          fmt(r.ours.p99Ms),
          fmt(r.peerFigures.samplesPerSecond),
          fmt(r.peerFigures.p99Ms),
          `${fmt(r.ratio, 3)}×`,
          `${fmt(r.p99Ratio, 2)}×`,
          bothSides(r.ours.cpuMsPerRequest, r.peerFigures.cpuMsPerRequest, 1),
          bothSides(r.ours.pageFaultsPerRequest, r.peerFigures.pageFaultsPerRequest, 0),
        ]),
      ),
      "",
    );
  }
  if (run.http) {
    out.push(
      "### Self-hosted server under autocannon",
      "",
      "Baseline: a bare `node:http` server that reads the body, `JSON.parse`s it and publishes the bytes raw, awaiting the PubAck (bench/raw-http-server.ts). autocannon runs on the same two cores.",
      "",
      table(
        [
          "metrics/request",
          "connections",
          "ours req/s",
          "raw req/s",
          "ratio",
          "ours metrics/s",
          "raw metrics/s",
          "ours p99 ms",
          "raw p99 ms",
        ],
        run.http.map((r) => [
          fmt(r.metricsPerRequest),
          fmt(r.connections),
          fmt(r.ours.requestsPerSecond),
          fmt(r.baseline.requestsPerSecond),
          fmt(ratio(r.ours.requestsPerSecond, r.baseline.requestsPerSecond), 2),
          fmt(r.ours.metricsPerSecond),
          fmt(r.baseline.metricsPerSecond),
          fmt(r.ours.p99Ms),
          fmt(r.baseline.p99Ms),
        ]),
      ),
      "",
    );
  }
  if (run.drain) {
    out.push(
      "### Worker drain of a backlog",
      "",
      "From starting the process to the consumer having nothing pending or unacknowledged (process start and connecting included for both); every row checked present. Baseline: bench/raw-drain.ts, a raw `consume()` → `JSON.parse` → insert (the same store code) → ack loop with the worker's batch size and as many batches stored at once (`WORKER_CONCURRENCY`). Each side drained the backlog twice, taking turns with the other, and keeps its faster drain; peak RSS is the kernel's VmHWM of the process, the larger of its two drains.",
      "",
      table(
        [
          "store",
          "backlog",
          "ours s",
          "raw s",
          "ours metrics/s",
          "raw metrics/s",
          "ratio",
          "ours peak RSS MB",
          "raw peak RSS MB",
        ],
        run.drain.map((r) => [
          r.store,
          `${fmt(r.messages)} × ${fmt(r.metricsPerMessage)}`,
          fmt(r.ours.seconds, 1),
          fmt(r.baseline.seconds, 1),
          fmt(r.ours.metricsPerSecond),
          fmt(r.baseline.metricsPerSecond),
          fmt(ratio(r.ours.metricsPerSecond, r.baseline.metricsPerSecond), 2),
          fmt(r.ours.peakRssMb),
          fmt(r.baseline.peakRssMb),
        ]),
      ),
      "",
    );
  }
  const rw = run.remoteWriteDrain;
  if (rw) {
    out.push(
      "### Worker drain beside VictoriaMetrics",
      "",
      `A backlog of ${fmt(rw.samples)} samples (the JSON API's messages of 100 metrics, version 2; an agent's of 100 and of 2,000 samples, version 4, as the edge publishes a remote-write batch) drained by the worker into a VictoriaMetrics of its own (\`DATABASE_URL=remote-write+http://…\`), into SQLite and into PostgreSQL, beside the same samples posted to that VictoriaMetrics directly by a bare client (remote-write requests of 10,000 samples encoded before the clock starts, 4 at once, the median of three posts: ${fmt(rw.direct.samplesPerSecond)} samples/s). Before each drain, on a backlog of its own: raw pull, the backlog pulled as the worker pulls and acked by the bare nats.js client, nothing decoded or stored (the ceiling of a worker on that client); and, into VictoriaMetrics, raw send, the same pulls gathered into the worker's batches and sent with the worker's own decoding, encoding and HTTP client, two batches at once, each acked after its 2xx, without the worker's scheduler, dead letters, retries and metrics (bench/raw-pull.ts). Every clock runs from the first delivery; every sample read back. CPU: each process's user and system time from /proc during the drain (the worker's from its first delivery), per million samples${rw.direct.cpu ? `; VictoriaMetrics' own ingest took ${fmt(rw.direct.cpu.receiver, 2)} s a million posted directly, the bare client ${fmt(rw.direct.cpu.client, 2)}` : ""}. bench/remote-write-drain.ts.`,
      "",
      table(
        [
          "into",
          "messages",
          "seconds",
          "with start-up s",
          "samples/s",
          "× VictoriaMetrics direct",
          "raw pull samples/s",
          "raw send samples/s",
          "× raw send",
          "CPU s a million samples: worker / nats-server / receiver",
          "peak RSS MB",
        ],
        rw.drains.map((d) => [
          d.target,
          d.messages,
          fmt(d.seconds, 2),
          fmt(d.withStartSeconds, 2),
          fmt(d.samplesPerSecond),
          fmt(ratio(d.samplesPerSecond, rw.direct.samplesPerSecond), 3),
          d.rawPull ? fmt(d.rawPull.samplesPerSecond) : "–",
          d.rawSend ? fmt(d.rawSend.samplesPerSecond) : "–",
          d.rawSend ? fmt(ratio(d.samplesPerSecond, d.rawSend.samplesPerSecond), 3) : "–",
          d.cpu
            ? [d.cpu.worker, d.cpu.nats, d.cpu.receiver]
                .map((c) => (c === undefined ? "–" : fmt(c, 2)))
                .join(" / ")
            : "–",
          fmt(d.peakRssMb),
        ]),
      ),
      "",
    );
  }
  const e = run.endToEnd;
  if (e) {
    out.push(
      "### End to end: POST to visible row",
      "",
      `A steady ${fmt(e.rate)} requests/s for ${e.seconds} s (open loop, single metrics) into SQLite; the database read every 2 ms. Baseline: the raw HTTP server and the raw drain loop.`,
      "",
      table(
        ["", "requests", "achieved req/s", "p50 ms", "p99 ms", "max ms", "202 p50 / p99 ms"],
        [
          ["ours (server + worker)", e.ours],
          ["raw (raw server + raw loop)", e.baseline],
        ].map(([name, f]) => {
          const x = f as EndToEndRow["ours"];
          return [
            name as string,
            fmt(x.requests),
            fmt(x.achievedRate),
            fmt(x.p50Ms, 1),
            fmt(x.p99Ms, 1),
            fmt(x.maxMs, 1),
            `${fmt(x.answerP50Ms, 1)} / ${fmt(x.answerP99Ms, 1)}`,
          ];
        }),
      ),
      "",
    );
  }
  const c = run.coldStart;
  if (c) {
    out.push(
      "### Cold start of the built function bundle",
      "",
      `Median of ${c.ours.runs} new processes each importing \`functions/ingest.mjs\` from the unpacked zip of \`netlify functions:build\` and answering one request, connection included. Baseline: a process importing the zip's own \`nats\`, connecting and publishing the same bytes.`,
      "",
      table(
        ["", "import ms", "import → 202 ms", "spawn → 202 ms"],
        [
          ["ours (function)", c.ours],
          ["raw (nats.js)", c.baseline],
        ].map(([name, f]) => {
          const x = f as ColdStartRow["ours"];
          return [
            name as string,
            fmt(x.importMs, 1),
            fmt(x.importToAnswerMs, 1),
            fmt(x.spawnToAnswerMs, 1),
          ];
        }),
      ),
      "",
    );
  }
  const h = run.functionHeap;
  if (h) {
    out.push(
      "### Function heap after many requests",
      "",
      `Heap used after a full GC, in a process of its own, before and after ${fmt(h.ours.requests)} single-metric requests (64 concurrent). Baseline: the raw publish of the same bytes as often.`,
      "",
      table(
        ["", "heap before MB", "heap after MB", "RSS after MB"],
        [
          ["ours (handler)", h.ours],
          ["raw (nats.js)", h.baseline],
        ].map(([name, f]) => {
          const x = f as HeapRow["ours"];
          return [
            name as string,
            fmt(x.heapBeforeMb, 1),
            fmt(x.heapAfterMb, 1),
            fmt(x.rssAfterMb, 1),
          ];
        }),
      ),
      "",
    );
  }
  return out.join("\n");
}

/** Bars of ours ÷ baseline for the headline figures of each setting, with the 0.8 line. */
export function chart(results: Results): string {
  const bars: { label: string; value: number; detail: string }[] = [];
  for (const run of results.runs) {
    for (const r of run.ingest ?? []) {
      if (r.concurrency !== 64 || r.metricsPerRequest === 100) continue;
      bars.push({
        label: `${run.setting}: in-process, ${fmt(r.metricsPerRequest)}/req`,
        value: ratio(r.ours.metricsPerSecond, r.baseline.metricsPerSecond),
        detail: `${fmt(r.ours.metricsPerSecond)} vs ${fmt(r.baseline.metricsPerSecond)} metrics/s`,
      });
    }
    for (const r of run.http ?? []) {
      bars.push({
        label: `${run.setting}: HTTP server, ${fmt(r.metricsPerRequest)}/req`,
        value: ratio(r.ours.metricsPerSecond, r.baseline.metricsPerSecond),
        detail: `${fmt(r.ours.metricsPerSecond)} vs ${fmt(r.baseline.metricsPerSecond)} metrics/s`,
      });
    }
    for (const r of run.protocols ?? []) {
      bars.push({
        label: `${run.setting}: ${r.protocol} vs ${r.peer}`,
        value: r.ratio,
        detail: `${fmt(r.ours.samplesPerSecond)} vs ${fmt(r.peerFigures.samplesPerSecond)} samples/s`,
      });
    }
    for (const r of run.drain ?? []) {
      bars.push({
        label: `${run.setting}: drain ${r.store}, ${fmt(r.messages)}×${fmt(r.metricsPerMessage)}`,
        value: ratio(r.ours.metricsPerSecond, r.baseline.metricsPerSecond),
        detail: `${fmt(r.ours.metricsPerSecond)} vs ${fmt(r.baseline.metricsPerSecond)} metrics/s`,
      });
    }
  }
  const rowH = 26;
  const left = 290;
  const width = 900;
  const plotW = 360;
  const top = 50;
  const height = top + bars.length * rowH + 40;
  const max = Math.max(1.2, ...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)));
  const x = (v: number) => left + (v / max) * plotW;
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">Throughput of ours ÷ the raw baseline measured in the same run (metrics/s)</text>`,
    `<text x="10" y="38" fill="#555">Dashed line: the 0.8 goal; 1.0: as fast as the raw client. ${esc(results.startedAt.slice(0, 10))}, ${results.machine.nproc} cores, load ${results.machine.loadAverageBefore}.</text>`,
  ];
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    const v = Number.isFinite(b.value) ? b.value : 0;
    const colour = v >= 0.8 ? "#2e7d32" : "#c62828";
    parts.push(
      `<text x="${left - 8}" y="${y + 16}" text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${left}" y="${y + 4}" width="${Math.max(1, x(v) - left)}" height="${rowH - 8}" fill="${colour}"/>`,
      `<text x="${x(v) + 6}" y="${y + 16}">${fmt(v, 2)}× · ${esc(b.detail)}</text>`,
    );
  });
  const bottom = top + bars.length * rowH;
  for (const [v, dash] of [
    [0.8, "5,4"],
    [1, ""],
  ] as const) {
    parts.push(
      `<line x1="${x(v)}" y1="${top}" x2="${x(v)}" y2="${bottom}" stroke="#333" stroke-dasharray="${dash}"/>`,
      `<text x="${x(v)}" y="${bottom + 16}" text-anchor="middle">${v}</text>`,
    );
  }
  parts.push("</svg>", "");
  return parts.join("\n");
}

export function markdown(results: Results): string {
  const m = results.machine;
  const v = results.versions;
  const gs = goals(results);
  const text = [
    "# Benchmarks",
    "",
    "Generated by `npm run bench` (bench/run.ts) from [bench/results.json](../bench/results.json); do not edit by hand. Every figure of ours stands beside a baseline measured in the same run, on the same machine, against the same private nats-server; compare the ratios more than the absolute figures.",
    "",
    results.quick
      ? "**This is a quick development run (`BENCH_QUICK=1`): smaller backlogs, shorter loads.**\n"
      : "",
    "## Machine and versions",
    "",
    table(
      ["what", "value"],
      [
        ["date", `${results.startedAt} → ${results.finishedAt}`],
        ["cores (nproc)", String(m.nproc)],
        ["CPU", m.cpuModel],
        ["memory", `${m.memoryGb} GB`],
        ["kernel", m.kernel],
        [
          "1-minute load average",
          `${m.loadAverageBefore} at the start, ${m.loadAverageAfter} at the end (the machine is shared)`,
        ],
        ["Node", v.node],
        ["nats-server", v.natsServer],
        ["PostgreSQL", v.postgresql],
        ...Object.entries(v.packages).map(([p, ver]) => [p, ver]),
      ],
    ),
    "",
    results.remeasured === undefined ? "" : `**Note:** ${results.remeasured}.\n`,
    "NATS settings per run: " +
      results.runs.map((r) => `**${r.setting}**: \`${r.natsSettings}\``).join("; ") +
      ". Each run has its own nats-server (`-js`, file storage in a temporary directory), the service's default stream and consumer.",
    "",
    "## Goals",
    "",
    table(
      ["goal", "measured", "", "missed by"],
      gs.map((g) => [g.goal, g.measured, mark(g), g.by]),
    ),
    "",
    "![ours ÷ baseline](../bench/throughput.svg)",
    "",
    ...results.runs.map(runSections),
    results.errors.length > 0
      ? `## Measurements that failed\n\n${results.errors.map((e) => `- ${e}`).join("\n")}\n`
      : "",
    "## Notes",
    "",
    NOTES,
    "",
  ].join("\n");
  return withTableOfContents(text);
}

/** The analysis of the figures: profiles, what each change bought, why goals are missed. */
const NOTES = readNotes();
function readNotes(): string {
  try {
    return readFileSync(join(PROJECT_ROOT, "bench", "notes.md"), "utf8").trim();
  } catch {
    return "";
  }
}

/** Writes `text` to `file` as the project's formatter would, so that `prettier --check` passes. */
export async function writeFormatted(file: string, text: string): Promise<void> {
  const options = (await resolveConfig(file)) ?? {};
  writeFileSync(file, await format(text, { ...options, filepath: file }));
}

export async function writeReport(results: Results): Promise<void> {
  await writeFormatted(join(PROJECT_ROOT, "docs", "benchmarks.md"), markdown(results));
  writeFileSync(join(PROJECT_ROOT, "bench", "throughput.svg"), chart(results));
}

if (import.meta.filename === process.argv[1]) {
  const file = join(PROJECT_ROOT, "bench", "results.json");
  await writeReport(JSON.parse(readFileSync(file, "utf8")) as Results);
}
