import type { JsMsg } from "nats";
import { describe, expect, it } from "vitest";
import { encodeEnvelope } from "../../shared/envelope.ts";
import type { Metric } from "../../shared/metric-schema.ts";
import { createBatchProcessor, retryDelayMs } from "../../worker/batch-processor.ts";
import type { DeadLetterReason, DeadLetterSender } from "../../worker/dead-letters.ts";
import type { MetricRow, StorableMessage } from "../../worker/metric-rows.ts";
import type { MessagesInserted, MetricStore } from "../../worker/metric-store.ts";
import { silentLogger } from "../helpers/logger.ts";

const MAX_DELIVER = 5;
const RECEIVED_AT = 1_714_566_896_789;

/**
 * Everything the fakes saw, in order: "insert", "inserted", "ack <seq>", "nak <seq> <delay>",
 * "term <seq>", "dlq <seq> <reason>".
 */
type Events = string[];

interface FakeMessage {
  readonly msg: JsMsg;
  readonly seq: number;
}

let nextSeq = 1;

/** A JsMsg as the consumer hands it over, whose ack, nak and term are written to `events`. */
function message(events: Events, data: string | Uint8Array, deliveryCount = 1): FakeMessage {
  const seq = nextSeq++;
  const msg = {
    data: typeof data === "string" ? new TextEncoder().encode(data) : data,
    subject: "metrics.json",
    headers: undefined,
    info: { deliveryCount, stream: "METRICS", streamSequence: seq },
    ack: () => events.push(`ack ${seq}`),
    nak: (delay?: number) => events.push(`nak ${seq} ${delay}`),
    // Terminated without a reason: servers before 2.10.4 ignore "+TERM <reason>".
    term: (reason?: string) =>
      events.push(reason === undefined ? `term ${seq}` : `term ${seq} ${reason}`),
  } as unknown as JsMsg;
  return { msg, seq };
}

/** An encoded envelope holding `metrics`. */
function envelope(id: string, metrics: Metric[] = [{ value: 1 }]): Uint8Array {
  return encodeEnvelope({ id, receivedAt: RECEIVED_AT, key: "message", metrics });
}

interface Fakes {
  /** What the store's insert does once called; by default it adds every row. */
  readonly insert?: (rows: readonly MetricRow[]) => Promise<number>;
  /** When given, the store takes its batches as messages (as the remote-write store does). */
  readonly insertMessages?: (
    messages: readonly StorableMessage[],
    cutoffMs: number | undefined,
  ) => Promise<MessagesInserted>;
  /** What sending to the dead-letter stream does; by default it succeeds. */
  readonly deadLetter?: () => Promise<void>;
  /** `RETENTION` in milliseconds, measured from RECEIVED_AT. */
  readonly retentionMs?: number;
}

function processorWith(fakes: Fakes = {}) {
  const events: Events = [];
  const inserted: MetricRow[][] = [];
  const deadLetters: { seq: number; reason: DeadLetterReason; detail: string }[] = [];
  const store: MetricStore = {
    async insert(rows) {
      events.push("insert");
      inserted.push([...rows]);
      const added = await (fakes.insert ? fakes.insert(rows) : Promise.resolve(rows.length));
      events.push("inserted");
      return added;
    },
    ping: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const { insertMessages } = fakes;
  if (insertMessages) {
    store.insertMessages = async (messages, cutoffMs) => {
      events.push("insert");
      const inserted = await insertMessages(messages, cutoffMs);
      events.push("inserted");
      return inserted;
    };
  }
  const deadLetter: DeadLetterSender = async (msg, reason, detail) => {
    await (fakes.deadLetter ? fakes.deadLetter() : Promise.resolve());
    deadLetters.push({ seq: msg.info.streamSequence, reason, detail });
    events.push(`dlq ${msg.info.streamSequence} ${reason}`);
  };
  const process = createBatchProcessor({
    store,
    deadLetter,
    maxDeliver: MAX_DELIVER,
    logger: silentLogger,
    retentionMs: fakes.retentionMs,
    now: () => RECEIVED_AT,
  });
  return { process, events, inserted, deadLetters };
}

const msgs = (...fakes: FakeMessage[]) => fakes.map((f) => f.msg);

describe("a batch with metrics older than the retention window", () => {
  it("stores the others, counts the old ones as expired, and acks every message", async () => {
    const { process, events, inserted } = processorWith({ retentionMs: 60_000 });
    const a = message(
      events,
      envelope("a", [
        { value: 1, timestamp: RECEIVED_AT - 60_001 },
        { value: 2, timestamp: RECEIVED_AT - 60_000 },
      ]),
    );
    const b = message(events, envelope("b", [{ value: 3, timestamp: RECEIVED_AT - 86_400_000 }]));

    const outcome = await process(msgs(a, b));

    expect(inserted.map((rows) => rows.map((r) => r.value))).toEqual([[2]]);
    expect(events).toEqual(["insert", "inserted", `ack ${a.seq}`, `ack ${b.seq}`]);
    expect(outcome).toMatchObject({ stored: 2, rows: 1, rowsAdded: 1, expired: 2 });
  });

  it("acks a batch of expired metrics only without asking the store", async () => {
    const { process, events, inserted } = processorWith({ retentionMs: 1000 });
    const a = message(events, envelope("a", [{ value: 1, timestamp: RECEIVED_AT - 5000 }]));
    expect(await process(msgs(a))).toMatchObject({ stored: 1, rows: 0, expired: 1 });
    expect(inserted).toEqual([]);
    expect(events).toEqual([`ack ${a.seq}`]);
  });
});

describe("a batch of good messages", () => {
  it("stores every metric in one insert and acks each message after it", async () => {
    const { process, events, inserted } = processorWith();
    const a = message(events, envelope("a", [{ value: 1 }, { value: 2 }]));
    const b = message(events, envelope("b"));

    const outcome = await process(msgs(a, b));

    expect(inserted).toHaveLength(1);
    expect(inserted[0]?.map((r) => [r.msgId, r.value])).toEqual([
      ["a", 1],
      ["a", 2],
      ["b", 1],
    ]);
    expect(events).toEqual(["insert", "inserted", `ack ${a.seq}`, `ack ${b.seq}`]);
    expect(outcome).toEqual({
      stored: 2,
      rows: 3,
      rowsAdded: 3,
      expired: 0,
      deadLettered: [],
      retried: 0,
      storeError: undefined,
      storeSeconds: expect.any(Number) as number,
    });
  });

  it("acks nothing until the insert has resolved", async () => {
    let commit: (added: number) => void = () => undefined;
    const committed = new Promise<number>((resolve) => (commit = resolve));
    const { process, events } = processorWith({ insert: () => committed });
    const a = message(events, envelope("a"));

    const outcome = process(msgs(a));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(events).toEqual(["insert"]);

    commit(0);
    expect(await outcome).toMatchObject({ stored: 1, rowsAdded: 0 });
    expect(events).toEqual(["insert", "inserted", `ack ${a.seq}`]);
  });

  it("acks a redelivered message whose rows were already stored", async () => {
    const { process, events } = processorWith({ insert: () => Promise.resolve(0) });
    const a = message(events, envelope("a"), 3);
    expect(await process(msgs(a))).toMatchObject({ stored: 1, rowsAdded: 0 });
    expect(events).toContain(`ack ${a.seq}`);
  });

  it("does nothing for an empty batch", async () => {
    const { process, events } = processorWith();
    expect(await process([])).toMatchObject({ stored: 0, deadLettered: [], retried: 0 });
    expect(events).toEqual([]);
  });
});

describe("poison messages", () => {
  const poisons: [string, string | Uint8Array, DeadLetterReason][] = [
    ["not JSON", "{not json", "undecodable"],
    ["not UTF-8", new Uint8Array([0x7b, 0xff, 0x7d]), "undecodable"],
    [
      "envelope version 5",
      JSON.stringify({ v: 5, id: "x", receivedAt: 1, key: "message", metrics: [{ value: 1 }] }),
      "unknown_version",
    ],
    [
      "version 4 with a list of metrics instead of series and points",
      JSON.stringify({ v: 4, id: "x", receivedAt: 1, key: "series", metrics: [{ value: 1 }] }),
      "invalid_envelope",
    ],
    [
      "version 3 with a list of metrics instead of groups",
      JSON.stringify({ v: 3, id: "x", receivedAt: 1, key: "message", metrics: [{ value: 1 }] }),
      "invalid_envelope",
    ],
    [
      "version 3 whose metrics have more tags than allowed with their group's",
      JSON.stringify({
        v: 3,
        id: "x",
        receivedAt: 1,
        key: "message",
        groups: [
          {
            tags: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`g${i}`, "v"])),
            metrics: [
              {
                value: 1,
                tags: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`o${i}`, "v"])),
              },
            ],
          },
        ],
      }),
      "invalid_envelope",
    ],
    [
      "version 3 whose shared tags, once for each metric, are more than a request may become",
      JSON.stringify({
        v: 3,
        id: "x",
        receivedAt: 1,
        key: "message",
        groups: [
          {
            tags: Object.fromEntries(
              Array.from({ length: 64 }, (_, i) => [`k${i}`.padEnd(128, "k"), "v".repeat(256)]),
            ),
            metrics: Array.from({ length: 700 }, () => ({ value: 1, tags: {} })),
          },
        ],
      }),
      "invalid_envelope",
    ],
    [
      "version 3 with more metrics in its groups together than a request may hold",
      JSON.stringify({
        v: 3,
        id: "x",
        receivedAt: 1,
        key: "message",
        groups: [1, 2].map(() => ({ metrics: Array.from({ length: 6000 }, () => ({ value: 1 })) })),
      }),
      "invalid_envelope",
    ],
    [
      "version 2 without a row key",
      JSON.stringify({ v: 2, id: "x", receivedAt: 1, metrics: [{ value: 1 }] }),
      "invalid_envelope",
    ],
    [
      "a series key for a metric without a timestamp",
      JSON.stringify({
        v: 2,
        id: "x",
        receivedAt: 1,
        key: "series",
        metrics: [{ name: "a", value: 1 }],
      }),
      "invalid_envelope",
    ],
    [
      "version 1 with a row key (version 1 has none)",
      JSON.stringify({ v: 1, id: "x", receivedAt: 1, key: "series", metrics: [{ value: 1 }] }),
      "unknown_version",
    ],
    [
      "no version",
      JSON.stringify({ id: "x", receivedAt: 1, metrics: [{ value: 1 }] }),
      "unknown_version",
    ],
    ["JSON null", "null", "unknown_version"],
    [
      "an invalid metric",
      JSON.stringify({ v: 1, id: "x", receivedAt: 1, metrics: [{ value: "1" }] }),
      "invalid_envelope",
    ],
    [
      "no metrics",
      JSON.stringify({ v: 1, id: "x", receivedAt: 1, metrics: [] }),
      "invalid_envelope",
    ],
    [
      "an unknown field",
      JSON.stringify({ v: 1, id: "x", receivedAt: 1, metrics: [{ value: 1 }], extra: 1 }),
      "invalid_envelope",
    ],
  ];

  it.each(poisons)(
    "%s is dead-lettered and terminated, and the good messages beside it are stored",
    async (_, data, reason) => {
      const { process, events, inserted, deadLetters } = processorWith();
      const good1 = message(events, envelope("good-1"));
      const poison = message(events, data);
      const good2 = message(events, envelope("good-2"));

      const outcome = await process(msgs(good1, poison, good2));

      expect(deadLetters.map(({ seq, reason }) => ({ seq, reason }))).toEqual([
        { seq: poison.seq, reason },
      ]);
      expect(deadLetters[0]?.detail).not.toBe("");
      const fate = events.filter((e) => e.split(" ")[1] === String(poison.seq));
      expect(fate).toEqual([`dlq ${poison.seq} ${reason}`, `term ${poison.seq}`]);

      expect(inserted.flat().map((r) => r.msgId)).toEqual(["good-1", "good-2"]);
      expect(events).toContain(`ack ${good1.seq}`);
      expect(events).toContain(`ack ${good2.seq}`);
      expect(outcome).toMatchObject({ stored: 2, deadLettered: [reason], retried: 0 });
    },
  );

  it("does not touch the store when every message is poison", async () => {
    const { process, events, inserted } = processorWith();
    const outcome = await process(msgs(message(events, "x"), message(events, "[]")));
    expect(inserted).toEqual([]);
    expect(outcome).toEqual({
      stored: 0,
      rows: 0,
      rowsAdded: 0,
      expired: 0,
      deadLettered: ["undecodable", "unknown_version"],
      retried: 0,
      storeError: undefined,
      storeSeconds: undefined,
    });
  });

  it("naks, and neither terminates nor acks, a poison message the dead-letter stream did not take", async () => {
    const { process, events } = processorWith({
      deadLetter: () => Promise.reject(new Error("no DLQ stream")),
    });
    const poison = message(events, "{not json", 2);

    const outcome = await process(msgs(poison));

    expect(events).toEqual([`nak ${poison.seq} ${retryDelayMs(2)}`]);
    expect(outcome).toMatchObject({ deadLettered: [], stored: 0 });
  });
});

describe("a store failure", () => {
  const failing = () => Promise.reject(new Error("database is locked"));

  it("naks every message with a delay, acking and dead-lettering nothing", async () => {
    const { process, events, deadLetters } = processorWith({ insert: failing });
    const first = message(events, envelope("a"), 1);
    const third = message(events, envelope("b"), 3);

    const outcome = await process(msgs(first, third));

    expect(events).toEqual(["insert", `nak ${first.seq} 1000`, `nak ${third.seq} 4000`]);
    expect(deadLetters).toEqual([]);
    expect(outcome).toMatchObject({ stored: 0, rowsAdded: 0, deadLettered: [], retried: 2 });
    expect(outcome.storeError?.message).toBe("database is locked");
  });

  it("dead-letters a message at its last allowed delivery as max_deliver", async () => {
    const { process, events, deadLetters } = processorWith({ insert: failing });
    const early = message(events, envelope("a"), MAX_DELIVER - 1);
    const last = message(events, envelope("b"), MAX_DELIVER);
    const beyond = message(events, envelope("c"), MAX_DELIVER + 1);

    const outcome = await process(msgs(early, last, beyond));

    expect(deadLetters).toEqual([
      { seq: last.seq, reason: "max_deliver", detail: "database is locked" },
      { seq: beyond.seq, reason: "max_deliver", detail: "database is locked" },
    ]);
    expect(events).toContain(`term ${last.seq}`);
    expect(events).toContain(`dlq ${last.seq} max_deliver`);
    expect(events).toContain(`term ${beyond.seq}`);
    expect(events).toContain(`dlq ${beyond.seq} max_deliver`);
    expect(events).toContain(`nak ${early.seq} ${retryDelayMs(MAX_DELIVER - 1)}`);
    expect(events.filter((e) => e.startsWith("ack"))).toEqual([]);
    expect(outcome).toMatchObject({
      deadLettered: ["max_deliver", "max_deliver"],
      retried: 1,
      stored: 0,
    });
  });

  it("naks, not terminates, a last delivery the dead-letter stream did not take", async () => {
    const { process, events } = processorWith({
      insert: failing,
      deadLetter: () => Promise.reject(new Error("no DLQ stream")),
    });
    const last = message(events, envelope("a"), MAX_DELIVER);

    const outcome = await process(msgs(last));

    expect(events).toEqual(["insert", `nak ${last.seq} ${retryDelayMs(MAX_DELIVER)}`]);
    expect(outcome).toMatchObject({ deadLettered: [], stored: 0 });
  });

  it("reports a store failure that is not an Error as an Error", async () => {
    const { process, events } = processorWith({
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      insert: () => Promise.reject("disk full"),
    });
    const outcome = await process(msgs(message(events, envelope("a"))));
    expect(outcome.storeError).toBeInstanceOf(Error);
    expect(outcome.storeError?.message).toBe("disk full");
  });
});

describe("rows the store refuses for good", () => {
  it("dead-letters the messages holding them, with the store's reason, and acks the others", async () => {
    const given: { ids: string[]; cutoffMs: number | undefined }[] = [];
    const { process, events, deadLetters } = processorWith({
      retentionMs: 60_000,
      insertMessages: (messages, cutoffMs) => {
        given.push({
          ids: messages.map((m) => (m.version === 4 ? m.columns.id : m.envelope.id)),
          cutoffMs,
        });
        // Message b (index 1) holds a sample the receiver refused.
        return Promise.resolve({
          added: 2,
          kept: [1, 2, 1],
          expired: 0,
          rejected: new Map([[1, "400 out of order sample"]]),
        });
      },
    });
    const a = message(events, envelope("a"));
    const b = message(events, envelope("b", [{ value: 1 }, { value: 2 }]));
    const c = message(events, envelope("c"));

    const outcome = await process(msgs(a, b, c));

    expect(given).toEqual([{ ids: ["a", "b", "c"], cutoffMs: RECEIVED_AT - 60_000 }]);
    expect(events).toEqual([
      "insert",
      "inserted",
      `ack ${a.seq}`,
      `dlq ${b.seq} rejected`,
      `term ${b.seq}`,
      `ack ${c.seq}`,
    ]);
    expect(deadLetters).toEqual([
      { seq: b.seq, reason: "rejected", detail: "400 out of order sample" },
    ]);
    expect(outcome).toMatchObject({
      stored: 2,
      rows: 2,
      rowsAdded: 2,
      deadLettered: ["rejected"],
      retried: 0,
      storeError: undefined,
    });
  });
});

describe("retryDelayMs", () => {
  it.each([
    [0, 1000],
    [1, 1000],
    [2, 2000],
    [3, 4000],
    [6, 32_000],
    [7, 60_000],
    [50, 60_000],
  ])("waits after delivery %d for %d ms", (deliveries, delay) => {
    expect(retryDelayMs(deliveries)).toBe(delay);
  });
});
