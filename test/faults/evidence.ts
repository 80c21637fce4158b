import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Subscription } from "nats";
import type { RequestRecord } from "./load.ts";
import type { NatsSetup } from "./nats-nodes.ts";
import type { StoredMetric } from "./reconcile.ts";
import type { System } from "./system.ts";

/**
 * What a scenario records so that a lost metric can be explained, not only counted: every
 * JetStream advisory (leader elections, lost quorum, deliveries exhausted…), every ack the
 * consumer saw (its `sample_freq` is set to 100 % for the run, so the server reports each ack
 * with its stream sequence), and the stream's and consumer's state each second. When the run
 * failed, `write` puts all of it in a directory of its own, with each node's whole log, the
 * processes' output, and for every request that lost metrics or was answered as a duplicate its
 * attempts and what became of the stream sequence each 2xx named.
 */
export interface EvidenceRecorder {
  /** Writes the evidence of a failed run; resolves to the directory. */
  write(
    records: readonly RequestRecord[],
    rows: readonly StoredMetric[],
    loadStartedAt: number,
  ): Promise<string>;
  stop(): void;
}

interface Event {
  /** Date.now() when it arrived. */
  readonly t: number;
  readonly what: string;
  readonly data: unknown;
}

/** One node's own view of the metrics stream's replica, from its monitoring endpoint. */
export interface ReplicaState {
  readonly node: string;
  readonly messages: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly consumerAckFloor: number | undefined;
}

interface Jsz {
  account_details?: {
    stream_detail?: {
      name: string;
      state: { messages: number; first_seq: number; last_seq: number };
      consumer_detail?: { name: string; ack_floor: { stream_seq: number } }[];
    }[];
  }[];
}

/**
 * Every running node's replica of `stream`: after a drain they must agree (no messages, the
 * same last sequence); replicas that disagree have diverged, and acks, which remove messages by
 * sequence, then remove different messages on each.
 */
export async function replicaStates(
  nats: NatsSetup,
  stream: string,
  consumer: string,
): Promise<(ReplicaState | { node: string; error: string })[]> {
  return Promise.all(
    nats.nodes.map(async (n) => {
      try {
        const res = await fetch(
          `http://${n.host}:${n.monitorPort}/jsz?accounts=true&streams=true&consumers=true`,
          { signal: AbortSignal.timeout(5000) },
        );
        const jsz = (await res.json()) as Jsz;
        const s = jsz.account_details
          ?.flatMap((a) => a.stream_detail ?? [])
          .find((d) => d.name === stream);
        if (!s) return { node: n.name, error: "no replica" };
        return {
          node: n.name,
          messages: s.state.messages,
          firstSeq: s.state.first_seq,
          lastSeq: s.state.last_seq,
          consumerAckFloor: s.consumer_detail?.find((c) => c.name === consumer)?.ack_floor
            .stream_seq,
        };
      } catch (err) {
        return { node: n.name, error: n.running ? String(err) : "not running" };
      }
    }),
  );
}

/** The replicas in a line: `n1 0 msgs, seqs 896–895; n2 …`. */
export function describeReplicas(states: Awaited<ReturnType<typeof replicaStates>>): string {
  return states
    .map((r) =>
      "error" in r
        ? `${r.node} ${r.error}`
        : `${r.node} ${r.messages} msgs, seqs ${r.firstSeq}–${r.lastSeq}, ack floor ${String(r.consumerAckFloor)}`,
    )
    .join("; ");
}

export async function recordEvidence(system: System, nats: NatsSetup): Promise<EvidenceRecorder> {
  const { nc } = system;
  const stream = system.config.stream.name;
  const consumer = system.config.consumer.name;
  const events: Event[] = [];
  /** Stream sequence → the deliveries count of each ack the server reported for it. */
  const acks = new Map<number, number[]>();

  const jsm = await nc.jetstreamManager({ timeout: 5000 });
  await jsm.consumers.update(stream, consumer, { sample_freq: "100%" });

  const subs: Subscription[] = [];
  const listen = (subject: string, on: (data: unknown, subject: string) => void) => {
    const sub = nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        try {
          on(msg.json(), msg.subject);
        } catch {
          on(msg.string(), msg.subject);
        }
      },
    });
    subs.push(sub);
  };
  listen("$JS.EVENT.ADVISORY.>", (data, subject) => {
    if (subject.startsWith("$JS.EVENT.ADVISORY.API")) return;
    events.push({ t: Date.now(), what: subject, data });
  });
  listen(`$JS.EVENT.METRIC.CONSUMER.ACK.${stream}.${consumer}`, (data) => {
    const d = data as { stream_seq?: number; deliveries?: number };
    if (typeof d.stream_seq !== "number") return;
    const list = acks.get(d.stream_seq) ?? [];
    list.push(d.deliveries ?? 0);
    acks.set(d.stream_seq, list);
  });

  let polling = true;
  const poll = async () => {
    while (polling) {
      const t = Date.now();
      try {
        const m = await nc.jetstreamManager({ timeout: 1000 });
        const s = await m.streams.info(stream);
        const c = await m.consumers.info(stream, consumer);
        events.push({
          t,
          what: "state",
          data: {
            streamLeader: s.cluster?.leader,
            first: s.state.first_seq,
            last: s.state.last_seq,
            messages: s.state.messages,
            deleted: s.state.num_deleted,
            consumerLeader: c.cluster?.leader,
            delivered: c.delivered.stream_seq,
            ackFloor: c.ack_floor.stream_seq,
            pending: c.num_pending,
            ackPending: c.num_ack_pending,
            redelivered: c.num_redelivered,
            waiting: c.num_waiting,
          },
        });
      } catch (err) {
        events.push({ t, what: "state", data: `unavailable: ${String(err)}` });
      }
      await sleep(Math.max(0, 1000 - (Date.now() - t)));
    }
  };
  void poll();

  return {
    stop() {
      polling = false;
      for (const s of subs) s.unsubscribe();
    },
    async write(records, rows, loadStartedAt) {
      const dir = mkdtempSync(join(tmpdir(), "faults-evidence-"));
      const at = (t: number) => t - loadStartedAt;
      const stored = new Set(rows.map((r) => `${r.req ?? "?"}/${r.index ?? "?"}`));
      const lines: string[] = [];
      const m = await nc.jetstreamManager({ timeout: 5000 });
      const info = await m.streams.info(stream).catch(() => undefined);
      lines.push(
        `stream now: first ${String(info?.state.first_seq)}, last ${String(info?.state.last_seq)}, messages ${String(info?.state.messages)}`,
      );
      lines.push(`replicas: ${describeReplicas(await replicaStates(nats, stream, consumer))}`);
      for (const r of records) {
        if (r.final !== "accepted") continue;
        const missing: number[] = [];
        for (let i = 0; i < r.metrics; i++) if (!stored.has(`${r.req}/${i}`)) missing.push(i);
        const duplicate = r.attempts.some((a) => a.duplicate === true);
        if (missing.length === 0 && !duplicate) continue;
        lines.push(
          `\n${r.req} key ${r.key ?? "none"}: ${missing.length} of ${r.metrics} metrics not stored${duplicate ? "; answered duplicate" : ""}`,
        );
        for (const a of r.attempts) {
          lines.push(
            `  attempt ${a.start}–${a.end} ms: ${String(a.status)}${a.code === undefined ? "" : ` ${a.code}`}${a.duplicate === true ? " duplicate" : ""}${a.seq === undefined ? "" : ` seq ${a.seq}`}`,
          );
          if (a.seq === undefined) continue;
          const inStream = await m.streams
            .getMessage(stream, { seq: a.seq })
            .then(
              (msg) =>
                `in the stream: subject ${msg.subject}, Nats-Msg-Id ${msg.header.get("Nats-Msg-Id")}`,
            )
            .catch((err: unknown) => `not in the stream (${String(err)})`);
          const acked = acks.get(a.seq);
          lines.push(
            `    seq ${a.seq}: ${inStream}; acks reported: ${acked === undefined ? "none" : acked.map((d) => `delivery ${d}`).join(", ")}`,
          );
          for (const e of events) {
            if (e.what === "state") continue;
            const d = e.data as { stream_seq?: number };
            if (d.stream_seq === a.seq) lines.push(`    advisory at ${at(e.t)} ms: ${e.what}`);
          }
        }
        // Acks near the request's sequence: a gap says the worker never acked that sequence.
        const seqs = r.attempts.flatMap((a) => (a.seq === undefined ? [] : [a.seq]));
        for (const seq of seqs) {
          const near: string[] = [];
          for (let s = seq - 3; s <= seq + 3; s++) near.push(`${s}:${acks.has(s) ? "acked" : "-"}`);
          lines.push(`    acks around ${seq}: ${near.join(" ")}`);
        }
      }
      writeFileSync(join(dir, "lost.txt"), `${lines.join("\n")}\n`);
      writeFileSync(
        join(dir, "timeline.jsonl"),
        events.map((e) => JSON.stringify({ ms: at(e.t), what: e.what, data: e.data })).join("\n"),
      );
      writeFileSync(
        join(dir, "acks.json"),
        JSON.stringify(Object.fromEntries([...acks].sort(([a], [b]) => a - b))),
      );
      writeFileSync(join(dir, "requests.json"), JSON.stringify(records, null, 1));
      writeFileSync(join(dir, "ingest-server.log"), system.serve.child.output());
      system.workers.forEach((w, i) => {
        writeFileSync(join(dir, `worker-${i + 1}.log`), w.output());
      });
      for (const n of nats.nodes) writeFileSync(join(dir, `nats-${n.name}.log`), n.fullOutput());
      return dir;
    },
  };
}
