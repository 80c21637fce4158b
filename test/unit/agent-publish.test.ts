import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { checkMetric, publishColumns } from "../../edge/publish/agent-publish.ts";
import { decodeEnvelope, ENVELOPE_VERSION, type Envelope } from "../../shared/envelope.ts";
import { ApiError } from "../../edge/http/errors.ts";
import { ExpansionBudget } from "../../edge/publish/expansion-budget.ts";
import { EXPANSION_LIMITS, METRIC_BOUNDS, REQUEST_LIMITS } from "../../shared/limits.ts";
import type { Metric } from "../../shared/metric-schema.ts";
import { runToEnd } from "../../shared/cooperative.ts";
import { pointIdentitiesOf, seriesMessageId } from "../../shared/series-identity.ts";
import type { OutgoingMessage } from "../../edge/publish/publisher.ts";
import { columnsOf } from "../helpers/columns-of.ts";
import { fakePublisher } from "../helpers/fake-publisher.ts";
import { refusal } from "../helpers/refusal.ts";

const RECEIVED_AT = 1_800_000_000_000;

const point = (i: number, extra: Partial<Metric> = {}): Metric => ({
  name: "cpu_usage",
  value: i,
  timestamp: `2026-11-27T10:00:00.${String(i).padStart(9, "0")}Z`,
  tags: { host: "a" },
  ...extra,
});

function envelopeOf(message: OutgoingMessage | undefined): Envelope {
  if (!message) throw new Error("nothing was published");
  const decoded = decodeEnvelope(message.data);
  if (!decoded.ok) throw new Error(decoded.message);
  return decoded.envelope;
}

/** The bound of the largest body: what the tests that are not about it run within. */
const largest = () => new ExpansionBudget(REQUEST_LIMITS.bodyBytes);

/** The most tags a metric may have, each of the greatest size. */
const maximumTags = (): Record<string, string> =>
  Object.fromEntries(
    Array.from({ length: METRIC_BOUNDS.tagCount }, (_, i) => [
      `${i}`.padStart(METRIC_BOUNDS.tagKeyLength, "k"),
      `${i}`.padStart(METRIC_BOUNDS.tagValueLength, "v"),
    ]),
  );

/** Each candidate checked as a protocol checks it, by its position. */
function checkMetrics(candidates: readonly unknown[], budget: ExpansionBudget) {
  const checked = candidates.map((candidate, index) => checkMetric(candidate, index, budget));
  return {
    valid: checked.flatMap((c) => ("metric" in c ? [c.metric] : [])),
    refused: checked.flatMap((c) => ("refused" in c ? [c.refused] : [])),
  };
}

describe("checkMetric", () => {
  it("keeps the valid metrics in order and names every refused one by its index", () => {
    const { valid, refused } = checkMetrics(
      [point(1), { name: "x", value: "1" }, point(2), { name: "", value: 1 }],
      largest(),
    );
    expect(valid).toEqual([point(1), point(2)]);
    expect(refused.map((r) => r.index)).toEqual([1, 3]);
    expect(refused[0]?.details[0]).toMatchObject({ index: 1, path: "/value" });
  });

  it("refuses a metric over the per-metric size limit, as the JSON API does", () => {
    const big = { ...point(1), note: "x".repeat(4000), more: Array(20).fill("y".repeat(4000)) };
    const { valid, refused } = checkMetrics([big], largest());
    expect(valid).toEqual([]);
    expect(refused[0]?.details[0]?.message).toMatch(/bytes as JSON; the limit is 65536/);
  });
});

describe("the expansion budget", () => {
  it("counts each metric as stored, its tags included, measuring a shared tag set once", () => {
    const tags = maximumTags();
    const metric = { ...point(1), tags };
    const budget = largest();
    expect(budget.spend(metric)).toBe(Buffer.byteLength(JSON.stringify(metric)));
    expect(budget.spend({ value: 1 })).toBe('{"value":1}'.length);
    expect(budget.spend({ tags: {} })).toBe('{"tags":{}}'.length);
    expect(budget.spentBytes).toBe(Buffer.byteLength(JSON.stringify(metric)) + 11 + 11);
  });

  it("allows a multiple of the decoded body, at least the floor and at most the cap", () => {
    const { bodyMultiple, floorBytes, maxBytes } = EXPANSION_LIMITS;
    expect(new ExpansionBudget(10).limitBytes).toBe(floorBytes);
    expect(new ExpansionBudget(100_000).limitBytes).toBe(bodyMultiple * 100_000);
    expect(new ExpansionBudget(REQUEST_LIMITS.bodyBytes).limitBytes).toBe(maxBytes);
  });

  it("refuses the first metric past a multiple of the body with expansion_over_ratio", () => {
    // 100 kB of body may become 64 times as much: 6.4 MB, some 250 metrics of 25 kB of tags.
    const budget = new ExpansionBudget(100_000);
    const tags = maximumTags();
    let checked = 0;
    const err = refusal(() => {
      for (let i = 0; i < REQUEST_LIMITS.metricsPerRequest; i++) {
        checkMetric({ ...point(i), tags }, i, budget);
        checked++;
      }
    });
    expect(err.code).toBe("expansion_over_ratio");
    expect(err.status).toBe(413);
    expect(err.message).toMatch(/more than 6400000 bytes as stored .* 64 times the 100000 bytes/);
    expect(checked).toBeLessThan(300);
  });

  it("refuses the first metric past the cap with expansion_over_limit", () => {
    const budget = new ExpansionBudget(REQUEST_LIMITS.bodyBytes);
    const tags = maximumTags();
    const err = refusal(() => {
      for (let i = 0; i < REQUEST_LIMITS.metricsPerRequest; i++) {
        checkMetric({ ...point(i), tags }, i, budget);
      }
    });
    expect(err.code).toBe("expansion_over_limit");
    expect(err.status).toBe(413);
    expect(budget.spentBytes).toBeGreaterThan(EXPANSION_LIMITS.maxBytes);
    expect(budget.spentBytes).toBeLessThan(EXPANSION_LIMITS.maxBytes + 30_000);
  });
});

describe("publishColumns", () => {
  it("publishes one series-keyed envelope whose id is a digest of the points' identities", async () => {
    const publisher = fakePublisher();
    const receipt = await publishColumns(publisher, {
      subject: "metrics.influx",
      columns: columnsOf([point(1), point(2)]),
      receivedAt: RECEIVED_AT,
      bodyBytes: 0,
    });
    expect(receipt).toEqual({ messages: 1, duplicates: 0 });
    const [message] = publisher.published;
    const decoded = decodeEnvelope(message?.data ?? new Uint8Array());
    expect(decoded.ok && decoded.version).toBe(ENVELOPE_VERSION);
    expect(ENVELOPE_VERSION).toBe(4);
    const envelope = envelopeOf(message);
    expect(envelope).toMatchObject({ key: "series", receivedAt: RECEIVED_AT });
    expect(envelope.metrics).toEqual([point(1), point(2)]);
    expect(message?.subject).toBe("metrics.influx");
    expect(message?.msgId).toBe(envelope.id);
    expect(envelope.id).toBe(
      seriesMessageId(runToEnd(pointIdentitiesOf([point(1), point(2)], RECEIVED_AT)), 0, 2),
    );
    expect(envelope.id).toMatch(/^s:[A-Za-z0-9_-]{43}$/);
  });

  it("writes tags shared by many points once, and the worker reads back each metric as it was", async () => {
    const publisher = fakePublisher();
    const tags = maximumTags();
    const metrics = Array.from({ length: 600 }, (_, i) => ({ ...point(i), tags, unit: "ms" }));
    await publishColumns(publisher, {
      subject: "s",
      columns: columnsOf(metrics),
      receivedAt: RECEIVED_AT,
      bodyBytes: 0,
    });
    expect(publisher.published).toHaveLength(1);
    const size = publisher.published[0]?.data.byteLength ?? 0;
    const tagBytes = Buffer.byteLength(JSON.stringify(tags));
    // 600 × 25 kB of tags as stored (within what a request may become); once here.
    expect(size).toBeLessThan(tagBytes + 600 * 150);
    const decoded = envelopeOf(publisher.published[0]).metrics;
    expect(decoded.map((m) => JSON.stringify(m))).toEqual(metrics.map((m) => JSON.stringify(m)));
  });

  it("gives a retried batch the same message id, and another batch another", async () => {
    const publisher = fakePublisher();
    const send = (metrics: Metric[]) =>
      publishColumns(publisher, {
        subject: "s",
        columns: columnsOf(metrics),
        receivedAt: RECEIVED_AT,
        bodyBytes: 0,
      });
    await send([point(1), point(2)]);
    await send([point(1), point(2)]);
    await send([point(1), point(3)]);
    const ids = publisher.published.map((m) => m.msgId);
    expect(ids[1]).toBe(ids[0]);
    expect(ids[2]).not.toBe(ids[0]);
  });

  it("splits a batch larger than one broker message, every part within the broker's limit", async () => {
    const maxPayload = 16 * 1024;
    const publisher = fakePublisher(undefined, maxPayload);
    // About 22 bytes a point as version 4: 2,000 points need three 16 KiB messages.
    const metrics = Array.from({ length: 2000 }, (_, i) => point(i));
    const receipt = await publishColumns(publisher, {
      subject: "s",
      columns: columnsOf(metrics),
      receivedAt: RECEIVED_AT,
      bodyBytes: 0,
    });
    expect(receipt.messages).toBeGreaterThan(1);
    expect(publisher.published).toHaveLength(receipt.messages);
    for (const m of publisher.published) expect(m.data.byteLength).toBeLessThanOrEqual(maxPayload);
    const republished = publisher.published.flatMap((m) => envelopeOf(m).metrics);
    expect(republished).toEqual(metrics);
    expect(new Set(publisher.published.map((m) => m.msgId)).size).toBe(receipt.messages);
  });

  it("cuts a series across messages with its tags in each, the same way every time", async () => {
    const maxPayload = 64 * 1024;
    const publisher = fakePublisher(undefined, maxPayload);
    // About 26 bytes a point, the tags once per message: 9,000 points need four 64 KiB messages. (Each
    // message's points with their tags stay within what a request may become, 16 MiB.)
    const tags = Object.fromEntries(Object.entries(maximumTags()).slice(0, 8));
    const metrics = Array.from({ length: 9000 }, (_, i) => ({ ...point(i), tags }));
    const send = () =>
      publishColumns(publisher, {
        subject: "s",
        columns: columnsOf(metrics),
        receivedAt: 0,
        bodyBytes: 0,
      });
    const first = await send();
    expect(first.messages).toBeGreaterThan(2);
    const parts = publisher.published.splice(0);
    for (const m of parts) expect(m.data.byteLength).toBeLessThanOrEqual(maxPayload);
    const republished = parts.flatMap((m) => envelopeOf(m).metrics);
    expect(republished.map((m) => JSON.stringify(m))).toEqual(
      metrics.map((m) => JSON.stringify(m)),
    );
    // Each part's id is a digest of its own points' identities.
    let start = 0;
    for (const m of parts) {
      const held = envelopeOf(m).metrics.length;
      const identities = runToEnd(pointIdentitiesOf(metrics.slice(start, start + held), 0));
      expect(m.msgId).toBe(seriesMessageId(identities, 0, held));
      start += held;
    }
    // A retry of the batch is cut into the same messages, with the same ids.
    await send();
    expect(publisher.published.map((m) => m.msgId)).toEqual(parts.map((m) => m.msgId));
  });

  it("counts the parts JetStream already held", async () => {
    let n = 0;
    const publisher = fakePublisher(
      () => Promise.resolve({ stream: "METRICS", seq: ++n, duplicate: n === 1 }),
      8 * 1024,
    );
    const metrics = Array.from({ length: 200 }, (_, i) => point(i));
    const receipt = await publishColumns(publisher, {
      subject: "s",
      columns: columnsOf(metrics),
      receivedAt: 0,
      bodyBytes: 0,
    });
    expect(receipt.duplicates).toBe(1);
    expect(receipt.messages).toBe(n);
  });

  it("fails when any part fails, with that part's error", async () => {
    let n = 0;
    const refusal = new ApiError("stream_full", "full");
    const publisher = fakePublisher(() => {
      n++;
      return n === 2
        ? Promise.reject(refusal)
        : Promise.resolve({ stream: "METRICS", seq: n, duplicate: false });
    }, 8 * 1024);
    const metrics = Array.from({ length: 1000 }, (_, i) => point(i));
    await expect(
      publishColumns(publisher, {
        subject: "s",
        columns: columnsOf(metrics),
        receivedAt: 0,
        bodyBytes: 0,
      }),
    ).rejects.toBe(refusal);
  });

  it("publishes nothing for no metrics", async () => {
    const publisher = fakePublisher();
    const receipt = await publishColumns(publisher, {
      subject: "s",
      columns: columnsOf([]),
      receivedAt: 0,
      bodyBytes: 0,
    });
    expect(receipt).toEqual({ messages: 0, duplicates: 0 });
    expect(publisher.published).toEqual([]);
  });
});

describe("seriesMessageId", () => {
  // An agent's retry after an upgrade must get the same id: its definition never changes.
  const digests = ["a".repeat(43), "b".repeat(43), "c".repeat(43)];
  const identities = {
    digests,
    seriesOf: [2, 0, 2, 1],
    ms: [1_700_000_000_000, -5, 1_700_000_000_000, 253_402_300_799_999],
    ns: [-1, 999_999, 123_456, 0],
  };

  it("is the SHA-256 of the series' digests in the order they appear, then 16 bytes a point", () => {
    const points = Buffer.alloc(4 * 16);
    const local = [0, 1, 0, 2]; // series 2 first, then 0, then 1
    for (let i = 0; i < 4; i++) {
      points.writeUInt32LE(local[i] as number, i * 16);
      points.writeDoubleLE(identities.ms[i] as number, i * 16 + 4);
      points.writeUInt32LE(Math.max(identities.ns[i] as number, 0), i * 16 + 12);
    }
    const count = Buffer.alloc(4);
    count.writeUInt32LE(3);
    const expected = createHash("sha256")
      .update(count)
      .update(`${"c".repeat(43)}${"a".repeat(43)}${"b".repeat(43)}`)
      .update(points)
      .digest("base64url");
    expect(seriesMessageId(identities, 0, 4)).toBe(`s:${expected}`);
    expect(seriesMessageId(identities, 0, 4)).toBe("s:q0xpNYnLVJSVTFQ5jZrF9xsDZUbG5evT3qyG_nqkTb4");
  });

  it("digests only the points from start to end, their series numbered as they appear there", () => {
    const tail = {
      digests: ["b".repeat(43), "c".repeat(43)],
      seriesOf: [1, 0],
      ms: [1_700_000_000_000, 253_402_300_799_999],
      ns: [123_456, 0],
    };
    expect(seriesMessageId(identities, 2, 4)).toBe(seriesMessageId(tail, 0, 2));
    expect(seriesMessageId(identities, 2, 4)).not.toBe(seriesMessageId(identities, 1, 3));
  });

  it("takes series with one digest (one name and tag set) as one series", () => {
    const points = { seriesOf: [0, 1], ms: [1_700_000_000_000, 1_700_000_000_001], ns: [-1, -1] };
    const twice = { ...points, digests: ["a".repeat(43), "a".repeat(43)] };
    const once = { ...points, seriesOf: [0, 0], digests: ["a".repeat(43)] };
    expect(seriesMessageId(twice, 0, 2)).toBe(seriesMessageId(once, 0, 2));
  });

  it("takes a time without nanoseconds (-1) as 0 nanoseconds past its milliseconds", () => {
    const zero = { ...identities, ns: [0, 999_999, 123_456, 0] };
    expect(seriesMessageId(zero, 0, 4)).toBe(seriesMessageId(identities, 0, 4));
  });
});
