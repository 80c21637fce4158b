/**
 * `npm run dlq -- <command>`: the operator's tool for the dead-letter stream.
 *
 *   list [--json]                                  every dead letter, one line each (the default)
 *   show <seq>                                     its headers (stderr) and its body (stdout)
 *   replay <seq>... | --all [--body-file <path>]   back to the main stream, then out of the DLQ
 *   delete <seq>... | --all                        out of the DLQ, for good
 *
 * Exit codes: 0 done; 1 a configuration, connection or per-message failure; 2 a usage error.
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import {
  connect,
  headers as natsHeaders,
  type JetStreamClient,
  type JetStreamManager,
  type StoredMsg,
} from "nats";
import { ConfigError, loadConfig, type Config } from "../shared/config.ts";
import { natsOptions } from "../shared/nats-connection.ts";
import { natsErrorKind } from "../shared/nats-errors.ts";
import { DLQ_HEADERS } from "../worker/dead-letters.ts";
import {
  formatCount,
  formatJsonLine,
  formatListLine,
  LIST_HEADER,
  replayMsgId,
  summarize,
  type DeadLetterSummary,
} from "./dlq-format.ts";

const USAGE = `usage: npm run dlq -- [list [--json] | show <seq> | replay <seq>... | replay --all
                       | replay <seq> --body-file <path> | delete <seq>... | delete --all]`;

class UsageError extends Error {}

type Command =
  | { readonly name: "list"; readonly json: boolean }
  | { readonly name: "show"; readonly seq: number }
  | {
      readonly name: "replay";
      readonly seqs: number[] | "all";
      readonly bodyFile: string | undefined;
    }
  | { readonly name: "delete"; readonly seqs: number[] | "all" };

function parseCommand(argv: readonly string[]): Command {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      json: { type: "boolean", default: false },
      all: { type: "boolean", default: false },
      "body-file": { type: "string" },
    },
  });
  const [name = "list", ...rest] = positionals;
  const seqs = rest.map((arg) => {
    if (!/^[1-9]\d*$/.test(arg)) throw new UsageError(`not a sequence number: ${arg}`);
    return Number(arg);
  });
  const refuse = (option: string) => {
    throw new UsageError(`${option} does not go with ${name}`);
  };
  if (values.json && name !== "list") refuse("--json");
  if (values.all && name !== "replay" && name !== "delete") refuse("--all");
  if (values["body-file"] !== undefined && name !== "replay") refuse("--body-file");

  switch (name) {
    case "list":
      if (seqs.length > 0) throw new UsageError("list takes no sequence numbers");
      return { name, json: values.json };
    case "show":
      if (seqs.length !== 1 || seqs[0] === undefined) {
        throw new UsageError("show takes one sequence number");
      }
      return { name, seq: seqs[0] };
    case "replay":
    case "delete": {
      if (values.all === seqs.length > 0) {
        throw new UsageError(`${name} takes sequence numbers or --all, not both or neither`);
      }
      const which = values.all ? "all" : seqs;
      if (name === "delete") return { name, seqs: which };
      const bodyFile = values["body-file"];
      // A fixed body belongs to one message: it would be wrong for every other.
      if (bodyFile !== undefined && seqs.length !== 1) {
        throw new UsageError("--body-file goes with exactly one sequence number");
      }
      return { name, seqs: which, bodyFile };
    }
    default:
      throw new UsageError(`unknown command: ${name}`);
  }
}

interface Context {
  readonly config: Config;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly dlq: string;
}

/** Every dead letter, oldest first, read by an ordered consumer without their bodies. */
async function readAll(ctx: Context): Promise<DeadLetterSummary[]> {
  const found: DeadLetterSummary[] = [];
  let want = (await ctx.jsm.streams.info(ctx.dlq)).state.messages;
  if (want === 0) return found;
  const consumer = await ctx.js.consumers.get(ctx.dlq, { headers_only: true });
  // Each message says how many follow it; a fetch that ends short (dead letters deleted
  // meanwhile) ends the listing rather than waiting for messages that will not come.
  while (want > 0) {
    const batch = await consumer.fetch({ max_messages: Math.min(want, 1000), expires: 2000 });
    want = 0;
    for await (const m of batch) {
      found.push(
        summarize(m.info.streamSequence, new Date(m.info.timestampNanos / 1e6), m.headers),
      );
      want = m.info.pending;
    }
  }
  return found;
}

/** The dead letter at `seq`, or undefined (and a line on stderr) when there is none. */
async function fetchOne(ctx: Context, seq: number): Promise<StoredMsg | undefined> {
  try {
    return await ctx.jsm.streams.getMessage(ctx.dlq, { seq });
  } catch (err) {
    // Never stored, or already replayed or deleted.
    if (natsErrorKind(err) === "message_not_found") {
      console.error(`dlq: no dead letter with seq ${seq} in ${ctx.dlq}`);
      return undefined;
    }
    throw err;
  }
}

async function list(ctx: Context, json: boolean): Promise<boolean> {
  const all = await readAll(ctx);
  if (json) {
    for (const d of all) console.log(formatJsonLine(d));
    return true;
  }
  if (all.length > 0) console.log(LIST_HEADER);
  for (const d of all) console.log(formatListLine(d));
  console.log(formatCount(all.length, ctx.dlq));
  return true;
}

/** Headers on stderr, the body on stdout byte for byte: `show 7 > body.json` saves the body alone. */
async function show(ctx: Context, seq: number): Promise<boolean> {
  const stored = await fetchOne(ctx, seq);
  if (!stored) return false;
  const lines = [
    `seq ${seq} in ${ctx.dlq}, stored ${stored.time.toISOString()}, subject ${stored.subject}`,
  ];
  for (const [key, values] of stored.header) {
    for (const value of values) lines.push(`${key}: ${value}`);
  }
  console.error(lines.join("\n"));
  process.stdout.write(stored.data);
  return true;
}

async function replay(ctx: Context, seq: number, body: Uint8Array | undefined): Promise<boolean> {
  const stored = await fetchOne(ctx, seq);
  if (!stored) return false;
  const subject = stored.header.get(DLQ_HEADERS.subject);
  if (!subject) {
    console.error(`dlq: seq ${seq} has no ${DLQ_HEADERS.subject} header; nowhere to replay it`);
    return false;
  }
  // Only the main stream's own subjects: the dead letter could name any subject, and a replay
  // must not land in another stream. (Not with the publish's `expect` option: its header would
  // be stored with the message and copied along should it be dead-lettered again.)
  if (!subject.startsWith(`${ctx.config.stream.subjectPrefix}.`)) {
    console.error(
      `dlq: seq ${seq} came from ${subject}, not a subject of ${ctx.config.stream.name}; not replayed`,
    );
    return false;
  }
  const h = natsHeaders();
  for (const [key, values] of stored.header) {
    // Dlq-* describe the dead letter, not the message; Nats-* are JetStream's own (the
    // Nats-Msg-Id here is the dead letter's id), and the replay sets its own id below.
    if (/^(dlq|nats)-/i.test(key)) continue;
    for (const value of values) h.append(key, value);
  }
  const ack = await ctx.js.publish(subject, body ?? stored.data, {
    headers: h,
    msgID: replayMsgId(ctx.dlq, seq),
    timeout: ctx.config.nats.publishTimeoutMs,
  });
  const where = ack.duplicate
    ? `already in ${ack.stream} at seq ${ack.seq} (an earlier replay of it)`
    : `${ack.stream} seq ${ack.seq}`;
  try {
    await ctx.jsm.streams.deleteMessage(ctx.dlq, seq);
  } catch (err) {
    console.error(
      `dlq: replayed seq ${seq} → ${where}, but could not delete it from ${ctx.dlq}: ${messageOf(err)}; replaying it again is harmless`,
    );
    return false;
  }
  console.log(`replayed seq ${seq} → ${where} (${subject}${body ? ", fixed body" : ""})`);
  return true;
}

async function remove(ctx: Context, seq: number): Promise<boolean> {
  const stored = await fetchOne(ctx, seq);
  if (!stored) return false;
  await ctx.jsm.streams.deleteMessage(ctx.dlq, seq);
  const d = summarize(seq, stored.time, stored.header);
  console.log(`deleted seq ${seq} (${d.reason ?? "-"}, msg id ${d.msgId ?? "-"})`);
  return true;
}

async function run(ctx: Context, command: Command): Promise<boolean> {
  switch (command.name) {
    case "list":
      return list(ctx, command.json);
    case "show":
      return show(ctx, command.seq);
    case "replay":
    case "delete": {
      const body =
        command.name === "replay" && command.bodyFile !== undefined
          ? await readFile(command.bodyFile)
          : undefined;
      const seqs = command.seqs === "all" ? (await readAll(ctx)).map((d) => d.seq) : command.seqs;
      if (seqs.length === 0) console.log(formatCount(0, ctx.dlq));
      // Each message on its own: one that is missing does not hold back the others.
      let ok = true;
      for (const seq of seqs) {
        const done =
          command.name === "replay" ? await replay(ctx, seq, body) : await remove(ctx, seq);
        ok &&= done;
      }
      return ok;
    }
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The servers as the operator wrote them, less any user and password in them. */
function redacted(servers: readonly string[]): string {
  return servers.map((s) => s.replace(/\/\/[^@/]*@/, "//")).join(",");
}

async function main(argv: readonly string[]): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (err) {
    console.error(`dlq: ${messageOf(err)}\n${USAGE}`);
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`dlq: ${err.message}`);
      return 1;
    }
    throw err;
  }
  const nc = await connect(natsOptions(config.nats, "metrics-dlq")).catch((err: unknown) => {
    console.error(
      `dlq: cannot connect to NATS at ${redacted(config.nats.servers)} (${messageOf(err)}); check NATS_URL and the NATS credentials`,
    );
    return undefined;
  });
  if (!nc) return 1;
  try {
    const jsm = await nc.jetstreamManager({ timeout: config.nats.publishTimeoutMs });
    const dlq = config.stream.dlqName;
    const missing = await jsm.streams.info(dlq).then(
      () => false,
      (err: unknown) => {
        if (natsErrorKind(err) === "stream_not_found") return true;
        throw err;
      },
    );
    if (missing) {
      console.error(`dlq: no stream ${dlq}; start the worker or run npm run setup first`);
      return 1;
    }
    const js = nc.jetstream({ timeout: config.nats.publishTimeoutMs });
    return (await run({ config, js, jsm, dlq }, command)) ? 0 : 1;
  } catch (err) {
    console.error(`dlq: ${messageOf(err)}`);
    return 1;
  } finally {
    await nc.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
