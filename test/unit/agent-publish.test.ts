import { describe, expect, it } from "vitest";
import { checkMetrics, publishSeries } from "../../shared/agent-publish.ts";
import { decodeEnvelope, type Envelope } from "../../shared/envelope.ts";
import { ApiError } from "../../shared/errors.ts";
import type { Metric } from "../../shared/metric-schema.ts";
import type { OutgoingMessage } from "../../shared/publisher.ts";
import { fakePublisher } from "../helpers/fake-publisher.ts";

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

describe("checkMetrics", () => {
  it("keeps the valid metrics in order and names every refused one by its index", () => {
    const { valid, refused } = checkMetrics([
      point(1),
      { name: "x", value: "1" },
      point(2),
      { name: "", value: 1 },
    ]);
    expect(valid).toEqual([point(1), point(2)]);
    expect(refused.map((r) => r.index)).toEqual([1, 3]);
    expect(refused[0]?.details[0]).toMatchObject({ index: 1, path: "/value" });
  });

  it("refuses a metric over the per-metric size limit, as the JSON API does", () => {
    const big = { ...point(1), note: "x".repeat(4000), more: Array(20).fill("y".repeat(4000)) };
    const { valid, refused } = checkMetrics([big]);
    expect(valid).toEqual([]);
    expect(refused[0]?.details[0]?.message).toMatch(/bytes as JSON; the limit is 65536/);
  });
});

describe("publishSeries", () => {
  it("publishes one series-keyed envelope whose id is a digest of the points' identities", async () => {
    const publisher = fakePublisher();
    const receipt = await publishSeries(publisher, {
      subject: "metrics.influx",
      metrics: [point(1), point(2)],
      receivedAt: RECEIVED_AT,
    });
    expect(receipt).toEqual({ messages: 1, duplicates: 0 });
    const [message] = publisher.published;
    const envelope = envelopeOf(message);
    expect(envelope).toMatchObject({ v: 2, key: "series", receivedAt: RECEIVED_AT });
    expect(envelope.metrics).toEqual([point(1), point(2)]);
    expect(message?.subject).toBe("metrics.influx");
    expect(message?.msgId).toBe(envelope.id);
    expect(envelope.id).toMatch(/^s:[A-Za-z0-9_-]{43}$/);
  });

  it("gives a retried batch the same message id, and another batch another", async () => {
    const publisher = fakePublisher();
    const send = (metrics: Metric[]) =>
      publishSeries(publisher, { subject: "s", metrics, receivedAt: RECEIVED_AT });
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
    const metrics = Array.from({ length: 500 }, (_, i) => point(i));
    const receipt = await publishSeries(publisher, {
      subject: "s",
      metrics,
      receivedAt: RECEIVED_AT,
    });
    expect(receipt.messages).toBeGreaterThan(1);
    expect(publisher.published).toHaveLength(receipt.messages);
    for (const m of publisher.published) expect(m.data.byteLength).toBeLessThanOrEqual(maxPayload);
    const republished = publisher.published.flatMap((m) => envelopeOf(m).metrics);
    expect(republished).toEqual(metrics);
    expect(new Set(publisher.published.map((m) => m.msgId)).size).toBe(receipt.messages);
  });

  it("counts the parts JetStream already held", async () => {
    let n = 0;
    const publisher = fakePublisher(
      () => Promise.resolve({ stream: "METRICS", seq: ++n, duplicate: n === 1 }),
      8 * 1024,
    );
    const metrics = Array.from({ length: 200 }, (_, i) => point(i));
    const receipt = await publishSeries(publisher, { subject: "s", metrics, receivedAt: 0 });
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
    const metrics = Array.from({ length: 200 }, (_, i) => point(i));
    await expect(publishSeries(publisher, { subject: "s", metrics, receivedAt: 0 })).rejects.toBe(
      refusal,
    );
  });

  it("publishes nothing for no metrics", async () => {
    const publisher = fakePublisher();
    const receipt = await publishSeries(publisher, { subject: "s", metrics: [], receivedAt: 0 });
    expect(receipt).toEqual({ messages: 0, duplicates: 0 });
    expect(publisher.published).toEqual([]);
  });
});
