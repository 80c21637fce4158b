/**
 * The store for `DATABASE_URL=remote-write+http(s)://…`: every batch is sent to a Prometheus
 * remote-write receiver (VictoriaMetrics, Prometheus, Mimir, Thanos Receive, Cortex), and
 * `insert` resolves only once the receiver answered 2xx for every sample of it.
 *
 * A request the receiver refuses for good (a 4xx other than 429) is split in halves by message,
 * and each half sent again, until the messages it refuses are found: those are rejected
 * (`RejectedRows`, with the receiver's answer), their neighbours stored. A message refused for a
 * duplicate timestamp is split further by sample: the receiver keeps the value it has, as the
 * other stores keep the first, and the message's other samples are stored.
 */
import { readFileSync } from "node:fs";
import type { Config } from "../shared/config.ts";
import { rowsOfMessages, type MetricRow, type StorableMessage } from "./metric-rows.ts";
import type { MessagesInserted, MetricStore, MetricStoreOptions } from "./metric-store.ts";
import { createReceiverClient } from "./receiver-client.ts";
import { deliver, type Delivery, type RetryPolicy } from "./remote-write-delivery.ts";
import { seriesOfMessages, seriesOfRows, type MappedRows } from "./remote-write-labels.ts";
import { encodeWriteRequest, remoteWriteHeaders } from "./remote-write-request.ts";
import { RejectedRows } from "./store-errors.ts";

/** The scheme prefix that selects this store. */
export const REMOTE_WRITE_PREFIX = "remote-write+";

/** How long one request may take, answer included. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Five attempts, 0.5 s to 4 s apart (~8 s in all), or as long as `Retry-After` asks, up to 30 s:
 * a receiver restarting is waited for with the messages kept in progress; one down for longer
 * gets them nak'd, and the worker's own backoff takes over.
 */
const RETRY: Omit<RetryPolicy, "onRetry"> = { attempts: 5, maxDelayMs: 30_000 };

const USER_AGENT = `metrics-ingest-worker/${packageVersion()}`;

/** Where to send, and how to authenticate, from `DATABASE_URL` and the bearer token. */
export function receiverTarget(
  databaseUrl: string,
  bearerToken: string | undefined,
): { url: URL; authorization: string | undefined } {
  const url = new URL(databaseUrl.slice(REMOTE_WRITE_PREFIX.length));
  let authorization = bearerToken === undefined ? undefined : `Bearer ${bearerToken}`;
  if (url.username !== "" || url.password !== "") {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    authorization ??= `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
    url.username = "";
    url.password = "";
  }
  return { url, authorization };
}

export function openRemoteWriteStore(
  database: Config["database"],
  options: MetricStoreOptions = {},
): MetricStore {
  const telemetry = options.sendTelemetry;
  const { url, authorization } = receiverTarget(database.url, database.remoteWriteBearerToken);
  const client = createReceiverClient({
    url,
    authorization,
    ca: database.remoteWriteCa,
    headers: remoteWriteHeaders(USER_AGENT),
    timeoutMs: REQUEST_TIMEOUT_MS,
  });
  const policy: RetryPolicy = {
    ...RETRY,
    onRetry: () => telemetry?.retried(),
  };

  type Refusal = Extract<Delivery, { ok: false }>;

  /**
   * Sends a batch's series as one request. When the receiver refuses it, the batch's rows (each
   * message's rows beginning at one of `starts`) are split and sent again until the messages it
   * refuses are found. Resolves to the rows added and the reason each refused message (by its
   * index in `starts`) was refused.
   */
  async function sendBatch(
    mapped: MappedRows,
    rowsOnRefusal: () => { rows: readonly MetricRow[]; starts: readonly number[] },
  ): Promise<{ added: number; rejected: Map<number, string> }> {
    if (mapped.droppedFields > 0) telemetry?.droppedFields(mapped.droppedFields);
    if (mapped.samples === 0) return { added: 0, rejected: new Map() };
    const delivery = await sendSeries(mapped);
    if (delivery.ok) return { added: mapped.samples, rejected: new Map() };
    const { rows, starts } = rowsOnRefusal();
    const rejected = new Map<number, string>();
    let added = 0;

    /** Sends rows `from` to `to` (not included), splitting them on a refusal. */
    async function send(from: number, to: number, answered?: Refusal): Promise<void> {
      let refusal = answered;
      if (refusal === undefined) {
        const part = seriesOfRows(rows.slice(from, to));
        if (part.samples === 0) return;
        const again = await sendSeries(part);
        if (again.ok) {
          added += part.samples;
          return;
        }
        refusal = again;
      }
      const middle = splitAt(from, to, starts, refusal.kind === "duplicate");
      if (middle !== undefined) {
        await send(from, middle);
        await send(middle, to);
        return;
      }
      // One sample: a duplicate of a timestamp stored already adds nothing, as in the other
      // stores. Else its message can never be stored.
      if (refusal.kind !== "duplicate") {
        rejected.set(
          starts.findLastIndex((start) => start <= from),
          refusal.answer,
        );
      }
    }

    await send(0, rows.length, delivery);
    return { added, rejected };
  }

  /** Sends the series as one request, retrying as the policy says. */
  async function sendSeries(mapped: MappedRows): Promise<Delivery> {
    const started = performance.now();
    const delivery = await deliver(
      (body) => client.post(body),
      encodeWriteRequest(mapped.series),
      policy,
    );
    if (delivery.ok) telemetry?.sent(mapped.samples, (performance.now() - started) / 1000);
    return delivery;
  }

  async function insert(rows: readonly MetricRow[]): Promise<number> {
    // Where each message's rows begin: the batch processor keeps a message's rows together.
    const starts = [0];
    for (let i = 1; i < rows.length; i++) {
      if (rows[i - 1]?.msgId !== rows[i]?.msgId) starts.push(i);
    }
    const { added, rejected } = await sendBatch(seriesOfRows(rows), () => ({ rows, starts }));
    if (rejected.size === 0) return added;
    const byRow = new Map<number, string>();
    for (const [message, reason] of rejected) {
      const end = starts[message + 1] ?? rows.length;
      for (let i = starts[message] ?? 0; i < end; i++) byRow.set(i, reason);
    }
    throw new RejectedRows(byRow, added);
  }

  /**
   * The batch as one request made from its messages' columns, with no row per sample. Only
   * when the receiver refuses it are the messages made rows, to find the samples it refuses.
   */
  async function insertMessages(
    messages: readonly StorableMessage[],
    cutoffMs: number | undefined,
  ): Promise<MessagesInserted> {
    const mapped = seriesOfMessages(messages, cutoffMs);
    const { kept, expired } = mapped;
    const { added, rejected } = await sendBatch(mapped, () => {
      const { perMessage } = rowsOfMessages(messages, cutoffMs);
      const starts: number[] = [];
      let start = 0;
      for (const rows of perMessage) {
        starts.push(start);
        start += rows.length;
      }
      return { rows: perMessage.flat(), starts };
    });
    return { added, kept, expired, rejected };
  }

  return {
    insert,
    insertMessages,
    // An empty request: every receiver answers it 2xx when it takes writes (and checks the
    // credentials), whatever other endpoints it has.
    async ping() {
      const answer = await client.post(encodeWriteRequest([]));
      if (answer.status < 200 || answer.status >= 300) {
        throw new Error(`the receiver answered ${answer.status} ${answer.text}`.trim());
      }
    },
    close() {
      client.close();
      return Promise.resolve();
    },
  };
}

/**
 * Where to split a refused request of rows `from` to `to`: at the message boundary nearest the
 * middle when it holds more than one message (`starts`: where each message's rows begin), else
 * in the middle of its samples when `bySample`; undefined when it cannot be split that way.
 */
function splitAt(
  from: number,
  to: number,
  starts: readonly number[],
  bySample: boolean,
): number | undefined {
  const inside = starts.filter((start) => start > from && start < to);
  if (inside.length > 0) return inside[Math.ceil(inside.length / 2) - 1];
  if (!bySample || to - from < 2) return undefined;
  return from + Math.ceil((to - from) / 2);
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}
