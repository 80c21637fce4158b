import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { headers } from "nats";
import { describe, expect, it } from "vitest";
import { replayMsgId } from "../../scripts/dlq-format.ts";
import type { Config } from "../../shared/config.ts";
import { jsonSubject } from "../../shared/stream-setup.ts";
import { realIngestHandler } from "../helpers/ingest.ts";
import { freePort, PROJECT_ROOT } from "../helpers/processes.ts";
import { readRows } from "../helpers/sqlite.ts";
import { waitFor } from "../helpers/wait.ts";
import { workerBed } from "../helpers/worker-bed.ts";
import { post } from "../helpers/requests.ts";

const bed = workerBed("dlq-test-");

interface Run {
  readonly code: number | string;
  readonly stdout: string;
  readonly stderr: string;
}

/** The real script, as `npm run dlq -- …` runs it, with the test's environment. */
function dlq(env: Record<string, string>, ...args: string[]): Promise<Run> {
  const child = spawn(process.execPath, ["scripts/dlq.ts", ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => {
    child.once("close", (code, signal) => {
      resolve({ code: code ?? signal ?? "unknown", stdout, stderr });
    });
  });
}

interface Listed {
  seq: number;
  reason?: string;
  detail?: string;
  stream?: string;
  streamSeq?: number;
  subject?: string;
  deliveries?: number;
  msgId?: string;
}

/** `dlq list --json`, parsed. */
async function listed(env: Record<string, string>): Promise<Listed[]> {
  const run = await dlq(env, "list", "--json");
  expect(run.code, run.stderr).toBe(0);
  return run.stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Listed);
}

/** The lines of `dlq list` that stand for a message (they begin with its sequence number). */
function messageLines(stdout: string): string[] {
  return stdout.split("\n").filter((line) => /^\s*\d+\s+\d{4}-/.test(line));
}

const encode = (text: string) => new TextEncoder().encode(text);
const NOT_JSON = "not json";
/** When the poison messages below say their request was received. */
const RECEIVED_AT = 1_795_000_000_000;
const VERSION_5 = '{"v":5,"id":"v5-1","receivedAt":1795000000000,"metrics":[{"value":1}]}';
const INVALID = '{"v":1,"id":"fixme-1","receivedAt":1795000000000,"metrics":[{"value":"oops"}]}';
const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/** The three kinds of message that can never be stored, straight to the main stream. */
async function publishPoison(config: Config, which = [NOT_JSON, VERSION_5, INVALID]) {
  const js = bed.nc.jetstream();
  for (const body of which) {
    const h = headers();
    h.set("traceparent", TRACEPARENT);
    const msgID = body === INVALID ? "fixme-1" : body === VERSION_5 ? "v5-1" : undefined;
    await js.publish(jsonSubject(config.stream), encode(body), {
      headers: h,
      ...(msgID === undefined ? {} : { msgID }),
    });
  }
}

async function dlqCount(config: Config): Promise<number> {
  return (await bed.jsm.streams.info(config.stream.dlqName)).state.messages;
}

/** Which of the dead letters at `seqs` holds `body`: the worker dead-letters in no set order. */
async function dlqSeqHolding(
  config: Config,
  body: string,
  seqs: readonly number[],
): Promise<number> {
  for (const seq of seqs) {
    const msg = await bed.jsm.streams.getMessage(config.stream.dlqName, { seq });
    if (new TextDecoder().decode(msg.data) === body) return seq;
  }
  throw new Error(`no dead letter at ${seqs.join(", ")} holds ${body}`);
}

async function waitForDeadLetters(config: Config, count: number): Promise<void> {
  await waitFor(`${count} dead letters`, async () =>
    (await dlqCount(config)) === count ? true : undefined,
  );
}

describe("dlq list", () => {
  it("lists the poison messages among good ones, with their reasons, and stores the good ones", async () => {
    const { config, env, dbPath } = bed.isolated("list");
    await bed.startedWorker(config, env);
    const { handler, close } = realIngestHandler(config);
    const two = '{"data": [{"value": 1, "tags": {"i": "1"}}, {"value": 2, "tags": {"i": "2"}}]}';
    expect((await handler(post(two))).status).toBe(202);
    await publishPoison(config, [NOT_JSON]);
    expect((await handler(post('{"data": {"name": "b", "value": 3}}'))).status).toBe(202);
    await publishPoison(config, [VERSION_5, INVALID]);
    expect((await handler(post('{"data": {"value": 4}}'))).status).toBe(202);
    await close();

    await waitForDeadLetters(config, 3);
    const rows = await waitFor("the good metrics stored", () => {
      const r = readRows(dbPath);
      return r.length >= 4 ? r : undefined;
    });
    // Batches commit in the order they finish (WORKER_CONCURRENCY), not the stream's.
    expect(rows.map((r) => r.value).toSorted((a, b) => a - b)).toEqual([1, 2, 3, 4]);

    const run = await dlq(env, "list");
    expect(run.code, run.stderr).toBe(0);
    // Concurrent batches may dead-letter the three in any order: each line is found by its
    // message, and the dead letters are numbered 1 to 3 in the order they came.
    const lines = messageLines(run.stdout);
    expect(lines.map((l) => l.trim().split(/\s+/)[0])).toEqual(["1", "2", "3"]);
    const byStreamSeq = lines.toSorted(
      (a, b) => Number(/S_list:(\d+)/.exec(a)?.[1]) - Number(/S_list:(\d+)/.exec(b)?.[1]),
    );
    expect(byStreamSeq[0]).toMatch(
      /^\s+\d\s+\S+Z\s+undecodable\s+not UTF-8 JSON.*S_list:2\s+1\s+-$/,
    );
    expect(byStreamSeq[1]).toMatch(
      /^\s+\d\s.*unknown_version\s+envelope version 5\s.*S_list:4\s+1\s+v5-1$/,
    );
    expect(byStreamSeq[2]).toMatch(
      /^\s+\d\s.*invalid_envelope\s+\/metrics\/0\/value must be number\s+S_list:5\s+1\s+fixme-1$/,
    );
    expect(run.stdout.trimEnd().split("\n").at(-1)).toBe("3 dead letters in S_list_DLQ");

    const json = await listed(env);
    expect(json.map((d) => d.seq)).toEqual([1, 2, 3]);
    expect(
      json
        .map((d) => [d.reason, d.streamSeq, d.msgId])
        .toSorted((a, b) => Number(a[1]) - Number(b[1])),
    ).toEqual([
      ["undecodable", 2, undefined],
      ["unknown_version", 4, "v5-1"],
      ["invalid_envelope", 5, "fixme-1"],
    ]);
    for (const d of json) {
      expect(d).toMatchObject({ stream: "S_list", subject: "m_list.json", deliveries: 1 });
    }
    // The detail in full, where the table shortens it.
    expect(json.find((d) => d.reason === "undecodable")?.detail).toMatch(
      /^not UTF-8 JSON: SyntaxError: .*"not json" is not valid JSON$/,
    );
  });
});

describe("dlq show and replay", () => {
  it("shows a message's body as stored, replays a fixed body, and refuses to replay it twice", async () => {
    const { config, env, dbPath } = bed.isolated("fix");
    await bed.startedWorker(config, env);
    await publishPoison(config, [INVALID]);
    await waitForDeadLetters(config, 1);
    const [letter] = await listed(env);
    if (!letter) throw new Error("no dead letter listed");

    const shown = await dlq(env, "show", String(letter.seq));
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toBe(INVALID);
    expect(shown.stderr).toContain("Dlq-Reason: invalid_envelope");
    expect(shown.stderr).toContain("Dlq-Msg-Id: fixme-1");
    expect(shown.stderr).toContain(`traceparent: ${TRACEPARENT}`);

    const fixedFile = join(bed.dir, "fixed.json");
    await writeFile(fixedFile, shown.stdout.replace('"value":"oops"', '"value": 42'));
    const replayed = await dlq(env, "replay", String(letter.seq), "--body-file", fixedFile);
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(replayed.stdout).toMatch(
      new RegExp(`^replayed seq ${letter.seq} → S_fix seq 2 \\(m_fix\\.json, fixed body\\)\\n$`),
    );

    const rows = await waitFor("the fixed metric stored", () => {
      const r = readRows(dbPath);
      return r.length > 0 ? r : undefined;
    });
    // The fixed message's metric, at the receive time its envelope carries.
    expect(rows.map((r) => [r.name, r.value, r.time_ms])).toEqual([[null, 42, RECEIVED_AT]]);
    expect(await dlqCount(config)).toBe(0);
    expect(await listed(env)).toEqual([]);

    const again = await dlq(env, "replay", String(letter.seq), "--body-file", fixedFile);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`no dead letter with seq ${letter.seq} in S_fix_DLQ`);
    expect(again.stdout).toBe("");
    expect(readRows(dbPath).filter((r) => r.time_ms === RECEIVED_AT)).toHaveLength(1);
    expect((await bed.jsm.streams.info(config.stream.name)).state.last_seq).toBe(2);
  });

  it("publishes nothing twice when a replay is run again after a crash between publish and delete", async () => {
    const { config, env, dbPath } = bed.isolated("crash");
    await bed.startedWorker(config, env);
    await publishPoison(config, [INVALID]);
    await waitForDeadLetters(config, 1);
    const fixed = INVALID.replace('"oops"', "42");

    // Play a replay that published the fixed body and died before deleting the dead letter.
    await bed.nc.jetstream().publish(jsonSubject(config.stream), encode(fixed), {
      msgID: replayMsgId(config.stream.dlqName, 1),
    });
    await waitFor("the fixed metric stored", () =>
      readRows(dbPath).length > 0 ? true : undefined,
    );
    const lastSeq = (await bed.jsm.streams.info(config.stream.name)).state.last_seq;

    const fixedFile = join(bed.dir, "crash-fixed.json");
    await writeFile(fixedFile, fixed);
    const run = await dlq(env, "replay", "1", "--body-file", fixedFile);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`replayed seq 1 → already in S_crash at seq ${lastSeq}`);
    expect((await bed.jsm.streams.info(config.stream.name)).state.last_seq).toBe(lastSeq);
    expect(await dlqCount(config)).toBe(0);
    expect(readRows(dbPath).map((r) => [r.time_ms, r.value])).toEqual([[RECEIVED_AT, 42]]);
  });

  it("replays --all of messages still poison: the worker dead-letters them again", async () => {
    const { config, env, dbPath } = bed.isolated("again");
    await bed.startedWorker(config, env);
    await publishPoison(config);
    await waitForDeadLetters(config, 3);
    const before = await listed(env);
    const firstSeqOfInvalid = await dlqSeqHolding(config, INVALID, [1, 2, 3]);

    const run = await dlq(env, "replay", "--all");
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trimEnd().split("\n")).toEqual([
      "replayed seq 1 → S_again seq 4 (m_again.json)",
      "replayed seq 2 → S_again seq 5 (m_again.json)",
      "replayed seq 3 → S_again seq 6 (m_again.json)",
    ]);

    await waitFor("the replayed messages dead-lettered again", async () => {
      const { state } = await bed.jsm.streams.info(config.stream.dlqName);
      return state.messages === 3 && state.first_seq === 4 ? state : undefined;
    });
    // Each replayed message dead-lettered again for its first reason. The worker settles its
    // batches in whatever order they end, so dead letters are matched by the stream sequence
    // they came from, not by their own order.
    const after = await listed(env);
    const byStreamSeq = [...after].sort((a, b) => (a.streamSeq ?? 0) - (b.streamSeq ?? 0));
    expect(byStreamSeq.map((d) => [d.streamSeq, d.reason])).toEqual([
      [4, before[0]?.reason],
      [5, before[1]?.reason],
      [6, before[2]?.reason],
    ]);
    expect(after.map((d) => d.seq).sort()).toEqual([4, 5, 6]);
    // The replay kept the message's own headers; the new dead letter carries the replay's id.
    const againSeq = byStreamSeq.find((d) => d.streamSeq === firstSeqOfInvalid + 3)?.seq ?? 0;
    const again = await bed.jsm.streams.getMessage(config.stream.dlqName, { seq: againSeq });
    expect(again.header.get("traceparent")).toBe(TRACEPARENT);
    expect(again.header.get("Dlq-Msg-Id")).toBe(
      replayMsgId(config.stream.dlqName, firstSeqOfInvalid),
    );
    expect(new TextDecoder().decode(again.data)).toBe(INVALID);
    expect(readRows(dbPath)).toEqual([]);
  });
});

describe("dlq delete", () => {
  it("removes the dead letters named, then all of them", async () => {
    const { config, env } = bed.isolated("drop");
    await bed.startedWorker(config, env);
    await publishPoison(config);
    await waitForDeadLetters(config, 3);

    // Concurrent batches may dead-letter the three in any order: find each by its reason.
    const bySeq = new Map((await listed(env)).map((d) => [d.seq, d]));
    const line = (seq: number) => {
      const d = bySeq.get(seq);
      return `deleted seq ${seq} (${d?.reason}, msg id ${d?.msgId ?? "-"})\n`;
    };
    const v5 = [...bySeq.values()].find((d) => d.msgId === "v5-1");
    expect(v5?.reason).toBe("unknown_version");
    const target = v5?.seq ?? 0;
    const rest = [1, 2, 3].filter((seq) => seq !== target);

    const one = await dlq(env, "delete", String(target));
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toBe(line(target));
    const list = await dlq(env, "list");
    expect(messageLines(list.stdout).map((l) => Number(l.trim().split(/\s+/)[0]))).toEqual(rest);
    expect(list.stdout).toContain("2 dead letters in S_drop_DLQ");

    const missing = await dlq(env, "delete", String(target));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`no dead letter with seq ${target} in S_drop_DLQ`);

    const all = await dlq(env, "delete", "--all");
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toBe(rest.map(line).join(""));
    expect(rest.map((seq) => bySeq.get(seq)?.reason).toSorted()).toEqual([
      "invalid_envelope",
      "undecodable",
    ]);
    expect((await dlq(env, "list")).stdout).toBe("no dead letters in S_drop_DLQ\n");
    // Deleting sent nothing back to the main stream.
    expect((await bed.jsm.streams.info(config.stream.name)).state.last_seq).toBe(3);
  });
});

describe("dlq failures", () => {
  it("exits 1 with the configuration's problems", async () => {
    const run = await dlq({ NATS_URL: bed.server.url, NATS_DLQ_STREAM: "bad name" }, "list");
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("invalid configuration");
    expect(run.stderr).toContain("NATS_DLQ_STREAM");
    expect(run.stdout).toBe("");
  });

  it("exits 1 with one line when NATS cannot be reached", async () => {
    const run = await dlq({ NATS_URL: `nats://127.0.0.1:${await freePort()}` }, "list");
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^dlq: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+ .*\n$/);
  });

  it("exits 1 when the dead-letter stream does not exist", async () => {
    const run = await dlq({ NATS_URL: bed.server.url, NATS_DLQ_STREAM: "NONE_SUCH" }, "list");
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("no stream NONE_SUCH");
  });

  it("exits 2 on a usage error, before connecting", async () => {
    const run = await dlq(
      { NATS_URL: "nats://127.0.0.1:1" },
      "replay",
      "1",
      "2",
      "--body-file",
      "x",
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--body-file goes with exactly one sequence number");
  });
});
