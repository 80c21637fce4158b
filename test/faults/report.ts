/**
 * Makes docs/reliability.md from the figures the fault suite wrote (test/faults/results/*.json):
 * `node test/faults/report.ts [results dir] [output file]`. test/faults/run.ts calls it after a
 * full run; a short run prints the summary table instead and leaves docs/reliability.md alone.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { join } from "node:path";
import { format } from "prettier";
import { withTableOfContents } from "../../scripts/markdown-toc.ts";
import { PROJECT_ROOT } from "../helpers/processes.ts";
import {
  readFigures,
  resultsDir,
  type Figures,
  type RunFigures,
  type ScenarioFigures,
  type ThroughputFigures,
} from "./figures.ts";

const n = (x: number) => x.toLocaleString("en-US");
const s = (ms: number | null) => (ms === null ? "did not recover" : `${(ms / 1000).toFixed(1)} s`);

function machine(): string {
  let os = "Linux";
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync("/etc/os-release", "utf8"));
    os = pretty?.[1] ?? os;
  } catch {
    // not Linux, or no os-release
  }
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? "CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${os} (kernel ${release()}), Node ${process.versions.node}, shared with other work`;
}

function recoveryCell(f: ScenarioFigures): string {
  const main = f.recovery.filter((r) => !r.what.startsWith("end of load"));
  const shown = main.length > 0 ? main : f.recovery;
  // The summary shows the slowest recovery; the scenario's section lists every one.
  const slowest = shown.reduce((a, b) => ((b.ms ?? Infinity) > (a.ms ?? Infinity) ? b : a));
  const more = shown.length > 1 ? `, slowest of ${shown.length}` : "";
  return `${s(slowest.ms)} (${slowest.what}${more})`;
}

function summaryTable(scenarios: readonly ScenarioFigures[]): string {
  const head =
    "| # | scenario | NATS | database | requests | 2xx | refused | unknown | metrics acknowledged | stored | lost | duplicated | refused but stored | time to recover | result |\n" +
    "| - | - | - | - | - | - | - | - | - | - | - | - | - | - | - |\n";
  return (
    head +
    scenarios
      .map((f) => {
        const c = f.counts;
        const nats = `${f.nats.version}, ${f.nats.nodes === 1 ? "1 node" : `${f.nats.nodes} nodes`}, R${f.nats.replicas}, ${f.nats.settings.includes("always") ? "sync always" : "default sync"}`;
        return `| ${f.id} | ${f.title} | ${nats} | ${f.database} | ${n(c.requests)} | ${n(c.accepted)} | ${n(c.refused)} | ${n(c.unknown)} | ${n(c.metricsAcknowledged)} | ${n(c.stored)} | **${n(c.lost)}** | **${n(c.duplicated)}** | **${n(c.refusedStored)}** | ${recoveryCell(f)} | ${f.passed ? "pass" : "**FAIL**"} |`;
      })
      .join("\n")
  );
}

function scenarioSection(f: ScenarioFigures): string {
  const c = f.counts;
  const l = f.load;
  const rows: [string, string][] = [
    ["fault", f.fault],
    [
      "nats-server",
      `${f.nats.version}, ${f.nats.nodes} node(s), stream replicas ${f.nats.replicas}, \`${f.nats.settings}\``,
    ],
    ["database", f.database],
    ["workers", f.workers],
    [
      "load",
      `${n(l.requests)} requests at ${l.ratePerSecond}/s, ${l.concurrency} clients; ${Math.round(l.batchFraction * 100)} % batches of 2–${l.maxBatch} metrics, ${Math.round(l.keyedFraction * 100)} % with an Idempotency-Key, ${Math.round(l.noRetryFraction * 100)} % sent once without retry; client timeout ${l.clientTimeoutMs / 1000} s`,
    ],
    ["requests sent", n(c.requests)],
    ["attempts beyond the first (retries)", n(c.retries)],
    ["answered 2xx (acknowledged)", n(c.accepted)],
    ["refused (every answer said nothing was published)", n(c.refused)],
    [
      "unknown (no 2xx; a timeout or `publish_timeout`)",
      `${n(c.unknown)} requests, ${n(c.unknownMetrics)} metrics, of which ${n(c.unknownStored)} stored (once each)`,
    ],
    ["metrics sent", n(c.metricsSent)],
    ["metrics acknowledged", n(c.metricsAcknowledged)],
    ["rows stored (this run's metrics)", n(c.stored)],
    ["**lost** (acknowledged, no row)", `**${n(c.lost)}**`],
    ["**duplicated** (rows beyond a metric's first)", `**${n(c.duplicated)}**`],
    ["**refused but stored**", `**${n(c.refusedStored)}**`],
    ["rows from no request", n(c.unexpected)],
    [
      "answers seen",
      Object.entries(f.outcomes)
        .map(([k, v]) => `${k}: ${n(v)}`)
        .join(", "),
    ],
    ...f.recovery.map((r): [string, string] => [`time: ${r.what}`, s(r.ms)]),
    ...Object.entries(f.extra).map(([k, v]): [string, string] => [
      k,
      typeof v === "number" ? n(v) : v,
    ]),
    ["run time", s(f.durationMs)],
    ["result", f.passed ? "pass" : "**FAIL**"],
  ];
  return (
    // A list, not a table: a scenario's description and recoveries run to a paragraph.
    `### ${f.id}. ${f.title}\n\n` + rows.map(([k, v]) => `- **${k}**: ${v}`).join("\n")
  );
}

function throughputSection(t: ThroughputFigures): string {
  const rows = t.results
    .map(
      (r) =>
        `| \`${r.sync === "always" ? "sync_interval: always" : "default (every 2 min)"}\` | ${n(r.awaitedPerSecond)} | ${n(r.inFlightPerSecond)} |`,
    )
    .join("\n");
  const byName = Object.fromEntries(t.results.map((r) => [r.sync, r]));
  const d = byName["default"];
  const a = byName["always"];
  const ratio =
    d !== undefined && a !== undefined && a.awaitedPerSecond > 0
      ? `With \`sync_interval: always\` an awaited publish is ${(d.awaitedPerSecond / a.awaitedPerSecond).toFixed(1)}× slower, and ${(d.inFlightPerSecond / Math.max(1, a.inFlightPerSecond)).toFixed(1)}× with ${t.inFlight} in flight. `
      : "";
  return (
    `nats-server ${t.version}, one node, file storage, a ${t.payloadBytes}-byte message (the envelope of a one-metric request), ` +
    `${t.seconds} s each, one after the other in the same run, on the machine above:\n\n` +
    `| JetStream setting | publishes/s, each awaited | publishes/s, ${t.inFlight} in flight |\n| - | - | - |\n${rows}\n\n` +
    `${ratio}One request is one message whatever its metrics, so batching metrics into requests is what buys throughput with durability on; ` +
    "the edge's own ceiling is lower still, since each request is also parsed, validated and answered over HTTP."
  );
}

const GUARANTEES = `## What a 2xx guarantees

A \`2xx\` means JetStream acknowledged the message holding every metric of the request (a
PubAck), and the worker stores each such metric exactly once unless the stream itself loses the
message. What the stream can lose depends on its replicas and on \`sync_interval\`:

| stream | a 2xx survives… | nats-server process crash (kill -9, OOM) | machine crash (power, kernel) | node lost for good (disk gone) |
| - | - | - | - | - |
| R1 | default sync (fsync every 2 min) | yes: written to the OS before the PubAck (needs nats-server ≥ 2.10.23; tested: scenario 1b) | **no**: up to the last ~2 minutes of acknowledged messages can be lost | **no**: the backlog not yet stored is lost |
| R1 | \`sync_interval: always\` | yes (tested: scenario 1) | yes, as documented: fsynced before the PubAck, if the disk honours fsync (not tested here) | **no**: one copy |
| R3 | default sync | yes, one node or all at once: each node's writes are in the OS before they count (not run here: scenario 2 uses \`always\`) | one node: yes, while the other two stay up; **but** Jepsen (2025) lost acknowledged writes when all or a majority crashed together, and when one node's OS crash met network delays or process pauses | one node: yes; two: the stream stops (503) and what only they held is gone |
| R3 | \`sync_interval: always\` | yes (tested: scenario 2) | yes, as documented, however many nodes crash together: each node fsyncs a write before it counts (not tested here: no power cuts on this machine) | one node: yes (tested: scenario 2); two: the stream stops (503) and what only they held is gone |

Jepsen's analysis of NATS 2.12.1 (December 2025, <https://jepsen.io/analyses/nats-2.12.1>) found
that coordinated power failures, or an OS crash on a single node combined with network delays or
process pauses, can lose acknowledged (committed) writes with the default fsync policy, and
traced that at least in part to syncing every two minutes instead of before acknowledging. It
also found writes lost when data files were truncated or corrupted on a minority of nodes, which
\`sync_interval: always\` does not address, and noted a process-crash stream loss in 2.10.22 fixed
in 2.10.23. Debian 12's nats-server 2.9.10 cannot set \`sync_interval\` at all and predates that
fix: it is fine for development and the regular tests, not for these guarantees.

By fault of the network, the disk and the processes (R3 rows with \`sync_interval: always\`):

| fault | a 2xx survives… | what it does not survive, or what the client sees | shown by |
| - | - | - | - |
| network partition: the stream leader cut off from the other two nodes | yes: the other two elect a leader and acknowledge; the old leader cannot reach a quorum, so nothing is acknowledged by it alone | requests through the cut-off node answer \`503 publish_timeout\` until the client retries | scenario 8 |
| network partition: the ingest server on the minority side | yes: nothing is acknowledged without a quorum | every request answers \`503\` (\`publish_timeout\`) while it lasts; the worker stores nothing until it heals | scenario 8 |
| slow (100 ms ± 50 ms) and lossy (5 %) links between the edge, the worker and NATS | yes | publishes slower than \`PUBLISH_TIMEOUT_MS\` answer \`503 publish_timeout\`: retried with the same key they store once; without a key the outcome is unknown | scenario 9 |
| the stream leader paused (SIGSTOP) past the election timeout, then resumed | yes: a paused leader acknowledges nothing, and on waking it follows the new leader | requests through the paused node time out until the client retries | scenario 10 |
| the SQLite file's disk full | yes: the worker acks only after a commit; it pauses, answers \`/readyz\` 503 and stores the backlog once space is back | the backlog grows in the stream meanwhile (up to \`STREAM_MAX_BYTES\`, then \`503 stream_full\`) | scenario 11 |
| the PostgreSQL tablespace's disk full | yes: the same; the worker's probe writes into a temporary table (rolled back) until the disk takes a batch again | the same | scenario 15 |
| JetStream's store directory full | yes: what was acknowledged is on disk | new requests answer \`503 storage_full\` (nothing stored) until space is freed; publishing then resumes by itself | scenario 12 |
| the worker past its memory limit (cgroup), large messages | yes: a killed worker acked nothing it had not committed, so its messages come again | under a limit below the worker's bound (see docs/worker.md) every replacement dies on the same messages: nothing is stored until the limit is raised | scenario 13 |
| all of these, one every 3 minutes, for 30 minutes | yes, and memory stays flat | — | scenario 14 (full suite only) |

nats-server 2.10.27 answers a publish whose block write hit \`ENOSPC\` with JetStream error 10077,
the code of a stream at its \`max_bytes\`, with the OS's error as its description ("write
…/msgs/146.blk: no space left on device"), and keeps JetStream enabled; the edge tells the two
apart by that description and answers \`storage_full\` (scenario 12). The store directory needs
\`max_file_store\` set above what its disk holds for this to happen at all (as on a disk shared
with other files): by default JetStream's limit is sized from the disk's free space at start, and
a stream whose \`max_bytes\` does not fit is refused ("insufficient storage resources available",
seen with the 1 GiB default \`STREAM_MAX_BYTES\` on a 64 MiB disk).

Not a guarantee: a \`503\` other than \`stream_full\`, \`storage_full\` and \`stream_unavailable\`, or a request that
timed out at the client, may or may not have been stored (\`publish_timeout\` means JetStream did
not answer in time, not that it did not store). Retrying with the same \`Idempotency-Key\` is
always safe; retrying such a request without a key can store its metrics twice.`;

export function renderReport(figures: readonly Figures[]): string {
  const scenarios = figures.filter((f): f is ScenarioFigures => f.kind === "scenario");
  const throughput = figures.find((f): f is ThroughputFigures => f.kind === "throughput");
  const run = figures.find((f): f is RunFigures => f.kind === "run");
  const date = (run?.date ?? scenarios[0]?.date ?? new Date().toISOString()).slice(0, 10);
  const versions = [...new Set(scenarios.map((f) => f.nats.version))].join(", ");
  // Figures written after the full run ended: a scenario run again on its own (after a fix).
  const rerun = run === undefined ? [] : scenarios.filter((f) => f.date > run.date);
  const rerunNote =
    rerun.length === 0
      ? ""
      : ` Run again on its own after that run, and shown from that run: ${rerun.map((f) => `scenario ${f.id} (${f.date.slice(0, 16)}Z)`).join(", ")}.`;
  const text = [
    "# Reliability",
    `Measured on ${date} by \`npm run test:faults\` (the full suite${run === undefined ? "" : `, ${s(run.durationMs)}`}); regenerated by it, not written by hand.${rerunNote} ` +
      "Each scenario runs the whole system — private nats-server processes, the self-hosted ingest server (`node server/main.ts`), worker processes (`node worker/main.ts`) and a SQLite file or a PostgreSQL database of its own — " +
      "sends a bounded load over HTTP, injects one fault, waits for the backlog to drain, and reconciles the database row by row with what every client was told.",
    [
      `- machine: ${machine()}`,
      `- nats-server: ${versions} (Debian trixie's, from \`scripts/get-nats-server.sh\`), each node from a config file with \`jetstream { store_dir: …, sync_interval: always }\` unless the scenario says \`default sync\`; PostgreSQL 15; the stream and consumer as the worker creates them (file storage, work queue, \`discard: new\`, duplicate window 2 min, ack wait 30 s) unless the scenario says otherwise`,
      "- clients: single metrics and batches, with and without `Idempotency-Key`. A client with a key retries every 503, timeout and broken connection with the same key (backoff 0.1 s doubling to 2 s); one without a key retries only `stream_full`, `storage_full` and `stream_unavailable` (nothing was published) and otherwise stops, its outcome unknown; some requests are sent once and never retried, so refusals stay refusals",
      "- **lost**: metrics of a request that got a 2xx with no row; **duplicated**: rows beyond a metric's first (every metric carries its request's id and its index in its tags, so copies are found whatever their message id); **refused but stored**: rows of a request whose every answer said nothing was published (4xx, `503 stream_full`, `503 storage_full`, `503 stream_unavailable`); **unknown**: no 2xx, and at least one timeout or `503 publish_timeout` — stored at most once is right. The suite fails if lost, duplicated, refused-but-stored or rows from no request is not 0",
    ].join("\n"),
    "## Summary",
    summaryTable(scenarios),
    GUARANTEES,
    "## What the durable setting costs",
    throughput === undefined ? "Not measured in this run." : throughputSection(throughput),
    "## Scenarios",
    ...scenarios.map(scenarioSection),
    "## Running it",
    "```sh\nscripts/get-nats-server.sh        # nats-server 2.10.27 into .tools/ (the suite fetches it when missing)\nnpm run test:faults               # the full suite; rewrites test/faults/results/ and this file\nnpm run test:faults -- --short    # smaller loads, as CI runs it (FAULTS_SHORT=1); leaves this file alone\n```",
  ].join("\n\n");
  return withTableOfContents(text);
}

export async function writeReport(dir: string, file: string): Promise<void> {
  const text = renderReport(readFigures(dir));
  writeFileSync(file, await format(text, { parser: "markdown", proseWrap: "preserve" }));
}

if (import.meta.main) {
  const dir = process.argv[2] ?? resultsDir();
  const file = process.argv[3] ?? join(PROJECT_ROOT, "docs", "reliability.md");
  await writeReport(dir, file);
  console.log(`wrote ${file}`);
}
