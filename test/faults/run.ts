/**
 * `npm run test:faults` runs the fault-injection suite and regenerates docs/reliability.md from its
 * figures; `npm run test:faults -- --short` (or FAULTS_SHORT=1) runs it with smaller loads, as CI
 * does, writes its figures to a temporary directory and prints the summary, leaving the
 * committed report and figures alone. Other arguments go to vitest (a file filter, say).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../helpers/processes.ts";
import { readFigures, summary, writeFigures, type ScenarioFigures } from "./figures.ts";
import { writeReport } from "./report.ts";

const args = process.argv.slice(2);
const short = args.includes("--short") || process.env["FAULTS_SHORT"] === "1";
const vitestArgs = args.filter((a) => a !== "--short");

// The suite needs a nats-server that can fsync each write; fetch Debian trixie's when missing.
if (
  process.env["FAULTS_NATS_SERVER_BIN"] === undefined &&
  !existsSync(join(PROJECT_ROOT, ".tools/nats-server/nats-server"))
) {
  const got = spawnSync("bash", [join(PROJECT_ROOT, "scripts/get-nats-server.sh")], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (got.status !== 0) {
    console.error(
      "test:faults: scripts/get-nats-server.sh failed; the suite needs nats-server 2.10+",
    );
    process.exit(1);
  }
}

const dir = short
  ? mkdtempSync(join(tmpdir(), "faults-short-"))
  : join(PROJECT_ROOT, "test/faults/results");
if (!short && vitestArgs.length === 0 && existsSync(dir)) {
  for (const f of readdirSync(dir)) if (f.endsWith(".json")) rmSync(join(dir, f));
}

const started = Date.now();
const vitest = spawnSync(
  join(PROJECT_ROOT, "node_modules/.bin/vitest"),
  ["run", "-c", "vitest.faults.config.ts", ...vitestArgs],
  {
    cwd: PROJECT_ROOT,
    stdio: "inherit",
    env: { ...process.env, FAULTS_SHORT: short ? "1" : "0", FAULTS_RESULTS_DIR: dir },
  },
);
const passed = vitest.status === 0;
const durationMs = Date.now() - started;
process.env["FAULTS_RESULTS_DIR"] = dir;
// A partial run (a file filter) leaves the last full run's figures: the report's header is theirs.
if (short || vitestArgs.length === 0) {
  writeFigures("run", { kind: "run", short, date: new Date().toISOString(), durationMs, passed });
}

const scenarios = readFigures(dir).filter((f): f is ScenarioFigures => f.kind === "scenario");
console.log(`\n${scenarios.map(summary).join("\n")}`);
console.log(
  `\n[faults] ${short ? "short" : "full"} run: ${Math.round(durationMs / 1000)} s, ${passed ? "passed" : "FAILED"}`,
);
if (short) {
  console.log("[faults] a short run: docs/reliability.md is not rewritten");
  rmSync(dir, { recursive: true, force: true });
} else if (vitestArgs.length > 0) {
  console.log("[faults] a partial run: docs/reliability.md is not rewritten");
} else {
  await writeReport(dir, join(PROJECT_ROOT, "docs", "reliability.md"));
  console.log("[faults] docs/reliability.md regenerated");
}
process.exit(vitest.status ?? 1);
