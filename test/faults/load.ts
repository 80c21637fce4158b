import { setTimeout as sleep } from "node:timers/promises";

/**
 * The fault suite's clients: real HTTP requests to the self-hosted ingest server, single
 * metrics and batches, with and without Idempotency-Key, retried as the API asks, each one
 * recorded with every attempt's outcome so that reconciliation can tell what must be stored.
 *
 * Retry policy (what a careful client does):
 * - with a key: retry any 503, 500, timeout or broken connection, with the same key, until the
 *   request's retry budget is spent;
 * - without a key: retry only a refusal that says nothing was published (`stream_full`,
 *   `storage_full`, `stream_unavailable`); after a timeout or `publish_timeout` the outcome is unknown, and a
 *   retry could store the metrics twice, so the client stops and records it as unknown;
 * - a share of requests (`noRetryFraction`) are sent once whatever happens, so that refusals
 *   stay refusals and reconciliation can check that nothing of them was stored.
 */

/** One attempt: an HTTP status (with the error code of a refusal), or no answer at all. */
export interface Attempt {
  /** ms since the load started, when the attempt was sent and when it ended. */
  readonly start: number;
  readonly end: number;
  readonly status: number | "timeout" | "network";
  readonly code?: string;
  /** A 2xx's `"duplicate": true`: the same key was already in the stream. */
  readonly duplicate?: boolean;
  /** A 2xx's stream sequence: where the message is, or (a duplicate) where its first copy is. */
  readonly seq?: number;
}

export type FinalOutcome = "accepted" | "refused" | "unknown";

export interface RequestRecord {
  /** The request's own id, carried in every metric's tags as `req`. */
  readonly req: string;
  readonly key: string | undefined;
  readonly metrics: number;
  readonly attempts: Attempt[];
  final: FinalOutcome;
}

export interface LoadOptions {
  /** `http://127.0.0.1:<port>` of the ingest server. */
  readonly base: string;
  /** Names the metrics (`faults.<runId>`) and prefixes request ids. */
  readonly runId: string;
  readonly requests: number;
  /** Requests started per second, so that the load spans the fault. */
  readonly ratePerSecond: number;
  readonly concurrency?: number;
  /** Share of requests with an Idempotency-Key (default 0.7). */
  readonly keyedFraction?: number;
  /** Share of requests that are batches of 2..maxBatch metrics (default 0.4). */
  readonly batchFraction?: number;
  readonly maxBatch?: number;
  /** Share of requests sent once, never retried (default 0.1). */
  readonly noRetryFraction?: number;
  /** The client's own timeout per attempt (default 10 s). */
  readonly clientTimeoutMs?: number;
  /** How long one request may keep retrying (default 60 s). */
  readonly retryBudgetMs?: number;
  readonly seed?: number;
}

/** 503 codes that say the message was not published: a retry without a key is safe. */
const NOT_PUBLISHED = new Set(["stream_full", "storage_full", "stream_unavailable"]);

/** Whether an attempt proves nothing was stored by it. */
export function provesNothingStored(a: Attempt): boolean {
  if (typeof a.status !== "number") return false;
  if (a.status >= 400 && a.status < 500) return true;
  return a.status === 503 && a.code !== undefined && NOT_PUBLISHED.has(a.code);
}

export function finalOutcome(attempts: readonly Attempt[]): FinalOutcome {
  if (attempts.some((a) => typeof a.status === "number" && a.status >= 200 && a.status < 300)) {
    return "accepted";
  }
  return attempts.every(provesNothingStored) ? "refused" : "unknown";
}

/** A small deterministic generator (mulberry32), so that a run's mix can be repeated. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Load {
  readonly records: readonly RequestRecord[];
  /** When the load started (Date.now()), the zero of every attempt's times. */
  readonly startedAt: number;
  /** Settles when every request has its final outcome. */
  readonly done: Promise<void>;
  /** ms since the load started. */
  now(): number;
}

export function startLoad(options: LoadOptions): Load {
  const rnd = random(options.seed ?? 1);
  const records: RequestRecord[] = [];
  const plan: { record: RequestRecord; retry: boolean; body: string }[] = [];
  for (let n = 0; n < options.requests; n++) {
    const req = `${options.runId}-${n}`;
    const batch = rnd() < (options.batchFraction ?? 0.4);
    const count = batch ? 2 + Math.floor(rnd() * ((options.maxBatch ?? 50) - 1)) : 1;
    const keyed = rnd() < (options.keyedFraction ?? 0.7);
    const retry = rnd() >= (options.noRetryFraction ?? 0.1);
    const metrics = Array.from({ length: count }, (_, i) => ({
      name: `faults.${options.runId}`,
      value: i,
      tags: { req, i: String(i) },
    }));
    const record: RequestRecord = {
      req,
      key: keyed ? `key-${req}` : undefined,
      metrics: count,
      attempts: [],
      final: "unknown",
    };
    records.push(record);
    plan.push({ record, retry, body: JSON.stringify({ data: batch ? metrics : metrics[0] }) });
  }

  const startedAt = Date.now();
  const now = () => Date.now() - startedAt;
  const clientTimeoutMs = options.clientTimeoutMs ?? 10_000;
  const retryBudgetMs = options.retryBudgetMs ?? 60_000;

  async function attempt(record: RequestRecord, body: string): Promise<Attempt> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (record.key !== undefined) headers["idempotency-key"] = record.key;
    const start = now();
    try {
      const res = await fetch(`${options.base}/api/v1/metrics`, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(clientTimeoutMs),
      });
      const json = (await res.json().catch(() => ({}))) as {
        duplicate?: boolean;
        seq?: number;
        error?: { code?: string };
      };
      const code = json.error?.code;
      return {
        start,
        end: now(),
        status: res.status,
        ...(code === undefined ? {} : { code }),
        ...(json.duplicate === true ? { duplicate: true } : {}),
        ...(typeof json.seq === "number" ? { seq: json.seq } : {}),
      };
    } catch (err) {
      const timedOut = err instanceof Error && err.name === "TimeoutError";
      return { start, end: now(), status: timedOut ? "timeout" : "network" };
    }
  }

  async function send(item: (typeof plan)[number]): Promise<void> {
    const { record, retry, body } = item;
    const first = now();
    for (let n = 0; n < 200; n++) {
      const a = await attempt(record, body);
      record.attempts.push(a);
      const ok = typeof a.status === "number" && a.status < 300;
      if (ok || !retry) break;
      if (typeof a.status === "number" && a.status < 500) break; // a 4xx is final
      if (record.key === undefined && !provesNothingStored(a)) break; // unknown: do not risk a second copy
      if (now() - first > retryBudgetMs) break;
      await sleep(Math.min(2000, 100 * 2 ** Math.min(n, 5)) * (0.5 + rnd()));
    }
    record.final = finalOutcome(record.attempts);
  }

  let next = 0;
  async function lane(): Promise<void> {
    while (next < plan.length) {
      const n = next++;
      const item = plan[n];
      if (item === undefined) break;
      const due = (n * 1000) / options.ratePerSecond - now();
      if (due > 0) await sleep(due);
      await send(item);
    }
  }
  const done = Promise.all(Array.from({ length: options.concurrency ?? 16 }, lane)).then(
    () => undefined,
  );
  return { records, startedAt, done, now };
}

/** The first 2xx among attempts started at or after `since` (ms since the load started). */
export function firstSuccessAfter(
  records: readonly RequestRecord[],
  since: number,
): number | undefined {
  let first: number | undefined;
  for (const r of records) {
    for (const a of r.attempts) {
      if (a.start < since || typeof a.status !== "number" || a.status >= 300) continue;
      if (first === undefined || a.end < first) first = a.end;
    }
  }
  return first;
}

/** Every attempt's outcome, counted: `202`, `503 stream_full`, `timeout`… */
export function outcomeCounts(records: readonly RequestRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) {
    for (const a of r.attempts) {
      const label =
        typeof a.status === "number"
          ? `${a.status}${a.code === undefined ? "" : ` ${a.code}`}${a.duplicate === true ? " duplicate" : ""}`
          : a.status;
      counts[label] = (counts[label] ?? 0) + 1;
    }
  }
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * 2xx answers that name no stream sequence (absent or 0): a 2xx must prove the message is in the
 * stream, and nats-server 2.10 answers an unstored message id "duplicate" with sequence 0.
 */
export function unprovenAcknowledgements(records: readonly RequestRecord[]): number {
  let n = 0;
  for (const r of records) {
    for (const a of r.attempts) {
      const ok = typeof a.status === "number" && a.status >= 200 && a.status < 300;
      if (ok && !(a.seq !== undefined && a.seq >= 1)) n++;
    }
  }
  return n;
}
