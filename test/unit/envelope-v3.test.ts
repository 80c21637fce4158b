import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runToEnd } from "../../shared/cooperative.ts";
import { encodeMessage, encodeSeriesMessages } from "../../shared/envelope-encoder.ts";
import { decodeEnvelope, type Envelope } from "../../shared/envelope.ts";
import type { Metric } from "../../shared/metric-schema.ts";
import {
  seriesMessageId,
  pointIdentitiesOf,
  seriesKey,
  seriesRowKey,
  seriesRowKeys,
} from "../../shared/series-identity.ts";
import { measurementTimeNs } from "../../shared/timestamp.ts";
import { validateMetric } from "../../shared/validators.ts";
import { rowsOfEnvelope } from "../../worker/metric-rows.ts";

const RECEIVED_AT = 1_777_593_600_000;

/** How row keys were made before a series' part of the digest was hashed once per series. */
function rowKeyAsBefore(metric: Metric, receivedAtMs: number): string {
  const tags = Object.entries(metric.tags ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const time = measurementTimeNs(metric.timestamp, receivedAtMs);
  const text = JSON.stringify([metric.name ?? null, tags, String(time)]);
  return `s:${createHash("sha256").update(text, "utf8").digest("base64url")}`;
}

/** One version 3 message of `envelope` (the JSON API wrote these until it wrote version 2). */
const encodeEnvelope = (envelope: Envelope): Uint8Array => runToEnd(encodeMessage(envelope)).data;

function decoded(data: Uint8Array): { envelope: Envelope; version: number } {
  const result = decodeEnvelope(data);
  if (!result.ok) throw new Error(`${result.reason}: ${result.message}`);
  return result;
}

/** The message as version 2 wrote it: each metric whole. */
function version2(envelope: Envelope): Uint8Array {
  return Buffer.from(JSON.stringify({ v: 2, ...envelope }));
}

/**
 * Tag keys, but not a one-character key that JSON escapes (`"\""`, `"\n"`): V8's `JSON.parse`
 * reads such a key back as a backslash once any parse met the key `"\\"` (nodejs/node#63785,
 * docs/troubleshooting.md), so the round trip would fail by chance, not by the envelope.
 */
const tagKey = fc.oneof(
  fc.constantFrom("host", "region", "__proto__", "constructor", "10", "2", "a b", "é"),
  fc
    .string({ minLength: 1, maxLength: 12 })
    .filter((key) => key.length > 1 || JSON.stringify(key).length === 3),
);
const tagValue = fc.oneof(fc.constantFrom("", "a", "eu-west-1"), fc.string({ maxLength: 40 }));
const tagSet = fc
  .uniqueArray(fc.tuple(tagKey, tagValue), { selector: ([k]) => k, maxLength: 8 })
  .map((entries) => Object.fromEntries(entries) as Record<string, string>);
const timestamp = fc.oneof(
  fc.integer({ min: 0, max: 253_402_300_799_999 }),
  fc.constantFrom("2026-05-01T00:00:00.123456789Z", "2026-05-01T02:00:00+02:00"),
);

/**
 * Lists of metrics as the protocols make them: runs sharing one tag object (a line, a series),
 * runs whose tags start alike (a resource's attributes, then each point's), metrics without
 * tags, and extra fields in any order around `tags`.
 */
const metricLists = fc
  .array(
    fc.record({
      shared: tagSet,
      runs: fc.array(
        fc.record({
          own: fc.option(tagSet, { nil: undefined }),
          name: fc.constantFrom("cpu", "mem", "a_b"),
          value: fc.double({ noNaN: true, noDefaultInfinity: true }),
          timestamp,
          tagsFirst: fc.boolean(),
          untagged: fc.boolean(),
        }),
        { minLength: 1, maxLength: 6 },
      ),
    }),
    { minLength: 1, maxLength: 5 },
  )
  .map((groups) =>
    groups.flatMap(({ shared, runs }) =>
      runs.map(({ own, name, value, timestamp: time, tagsFirst, untagged }): Metric => {
        if (untagged) return { name, value, timestamp: time };
        // The same object when a point adds nothing, as a line's fields share their line's.
        const tags = own === undefined ? shared : { ...shared, ...own };
        return tagsFirst
          ? ({ tags, name, value, timestamp: time, kind: "gauge" } as Metric)
          : { name, value, timestamp: time, tags };
      }),
    ),
  )
  .filter((metrics) => metrics.every((m) => validateMetric(m)));

describe("envelope version 3", () => {
  it("gives the worker back every metric exactly as sent, down to the order of fields and tags", () => {
    fc.assert(
      fc.property(metricLists, (metrics) => {
        const envelope: Envelope = {
          id: "req-1",
          receivedAt: RECEIVED_AT,
          key: "message",
          metrics,
        };
        const read = decoded(encodeEnvelope(envelope));
        expect(read.version).toBe(3);
        expect(read.envelope.metrics.map((m) => JSON.stringify(m))).toEqual(
          metrics.map((m) => JSON.stringify(m)),
        );
      }),
      { numRuns: 500 },
    );
  });

  it("makes the same rows as version 2 made of the same metrics, with either row key", () => {
    fc.assert(
      fc.property(metricLists, fc.constantFrom("message", "series"), (metrics, key) => {
        const envelope: Envelope = { id: "req-1", receivedAt: RECEIVED_AT, key, metrics };
        expect(rowsOfEnvelope(decoded(encodeEnvelope(envelope)).envelope)).toEqual(
          rowsOfEnvelope(decoded(version2(envelope)).envelope),
        );
      }),
      { numRuns: 300 },
    );
  });

  it("writes a tag set shared by a run of metrics once", () => {
    const tags = Object.fromEntries(
      Array.from({ length: 64 }, (_, i) => [`key-${i}`, "v".repeat(200)]),
    );
    const metrics = Array.from({ length: 1000 }, (_, i) => ({ name: "m", value: i, tags }));
    const data = encodeEnvelope({ id: "x", receivedAt: 0, key: "message", metrics });
    const written = JSON.parse(new TextDecoder().decode(data)) as {
      groups: { tags?: object; metrics: Metric[] }[];
    };
    expect(written.groups).toHaveLength(1);
    expect(written.groups[0]?.tags).toEqual(tags);
    expect(written.groups[0]?.metrics[0]).toEqual({ name: "m", value: 0, tags: {} });
    expect(data.byteLength).toBeLessThan(JSON.stringify(tags).length + 1000 * 40);
  });

  it("writes a resource's attributes once, each point keeping only its own", () => {
    const resource = { "service.name": "checkout", "host.name": "web-1".repeat(10) };
    const metrics = ["/a", "/b", "/c"].map((route, i) => ({
      name: "requests",
      value: i,
      tags: { ...resource, route },
    }));
    const data = encodeEnvelope({ id: "x", receivedAt: 0, key: "message", metrics });
    const written = JSON.parse(new TextDecoder().decode(data)) as {
      groups: { tags?: object; metrics: Metric[] }[];
    };
    expect(written.groups.map((g) => g.tags)).toEqual([resource]);
    expect(written.groups[0]?.metrics.map((m) => m.tags)).toEqual([
      { route: "/a" },
      { route: "/b" },
      { route: "/c" },
    ]);
    expect(decoded(data).envelope.metrics).toEqual(metrics);
  });

  it("cuts series-keyed messages within the size given, each id a digest of its own points", () => {
    fc.assert(
      fc.property(metricLists, fc.integer({ min: 600, max: 4000 }), (metrics, maxBytes) => {
        const messages = runToEnd(encodeSeriesMessages(metrics, RECEIVED_AT, maxBytes));
        let start = 0;
        for (const message of messages) {
          const { envelope } = decoded(message.data);
          const held = metrics.slice(start, start + message.metrics);
          // A metric too large for any message goes alone, for the publisher to refuse.
          if (message.metrics > 1) expect(message.data.byteLength).toBeLessThanOrEqual(maxBytes);
          expect(envelope.metrics.map((m) => JSON.stringify(m))).toEqual(
            held.map((m) => JSON.stringify(m)),
          );
          const identities = runToEnd(pointIdentitiesOf(held, RECEIVED_AT));
          expect(message.id).toBe(seriesMessageId(identities, 0, held.length));
          expect(envelope.id).toBe(message.id);
          start += message.metrics;
        }
        expect(start).toBe(metrics.length);
      }),
      { numRuns: 300 },
    );
  });
});

describe("series row keys", () => {
  it("are what they were before a series was hashed once for all its points", () => {
    fc.assert(
      fc.property(metricLists, (metrics) => {
        const expected = metrics.map((m) => rowKeyAsBefore(m, RECEIVED_AT));
        expect(runToEnd(seriesRowKeys(metrics, RECEIVED_AT))).toEqual(expected);
        expect(metrics.map((m) => seriesRowKey(m, RECEIVED_AT))).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it("are the same for two points exactly when their identities (what message ids digest) are", () => {
    fc.assert(
      fc.property(metricLists, (metrics) => {
        const keys = runToEnd(seriesRowKeys(metrics, RECEIVED_AT));
        const { digests, seriesOf, ms, ns } = runToEnd(pointIdentitiesOf(metrics, RECEIVED_AT));
        const ids = metrics.map((_, i) => `${digests[seriesOf[i] as number]} ${ms[i]} ${ns[i]}`);
        for (let i = 0; i < metrics.length; i++) {
          for (let j = 0; j < metrics.length; j++) {
            expect(ids[i] === ids[j]).toBe(keys[i] === keys[j]);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("tell apart the same tags under another name, and the same name with other tags", () => {
    const tags = { host: "a" };
    const keys = runToEnd(
      seriesRowKeys(
        [
          { name: "cpu", value: 1, timestamp: 5, tags },
          { name: "mem", value: 1, timestamp: 5, tags },
          { name: "cpu", value: 1, timestamp: 5, tags: { host: "b" } },
          { name: "cpu", value: 2, timestamp: 5, tags: { host: "a" } },
        ],
        0,
      ),
    );
    expect(new Set(keys).size).toBe(3);
    expect(keys[3]).toBe(keys[0]);
  });

  it("are each row's own when a run of metrics shares one tags object under other names", () => {
    const tags = { host: "a" };
    const metrics = [
      { name: "cpu", value: 1, timestamp: 5, tags },
      { name: "mem", value: 1, timestamp: 5, tags },
      { value: 1, timestamp: 5, tags },
      { name: "cpu", value: 1, timestamp: 6 },
      { name: "mem", value: 1, timestamp: 6 },
    ];
    const rows = rowsOfEnvelope({ id: "m", receivedAt: 0, key: "series", metrics });
    expect(rows.map((r) => [r.series, r.name, r.tags])).toEqual(
      metrics.map((m) => [
        seriesKey(m.name ?? null, m.tags ?? {}),
        m.name ?? null,
        JSON.stringify(m.tags ?? {}),
      ]),
    );
  });
});
