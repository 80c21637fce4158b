import { fromBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeWriteRequest, pointsOfWriteRequest } from "../../edge/remote-write/remote-write.ts";
import { ExpansionBudget } from "../../edge/publish/expansion-budget.ts";
import { runToEnd } from "../../shared/cooperative.ts";
import { REQUEST_LIMITS } from "../../shared/limits.ts";
import { seriesKey } from "../../shared/series-identity.ts";
import { encodeEnvelope, decodeMessage } from "../../shared/envelope.ts";
import { rowsOfEnvelope, rowsOfMessage, type MetricRow } from "../../worker/metric-rows.ts";
import {
  DEFAULT_METRIC_NAME,
  extraFieldsOf,
  labelNameOf,
  labelsOf,
  metricNameOf,
  seriesOfMessages,
  seriesOfRows,
  type OutgoingSeries,
} from "../../worker/remote-write-labels.ts";
import { encodeWriteRequest, writeRequestBytes } from "../../worker/remote-write-request.ts";
import { WriteRequestSchema } from "../../shared/gen/proto/prometheus/remote_pb.js";
import { encodeSeriesMessagesV4 } from "../helpers/envelope-v4-by-metric.ts";
import { prometheusBatch } from "../helpers/payloads.ts";

/** A row as the worker makes it: its series key from its name and tags. */
function row(fields: Partial<MetricRow> & { timeMs: number }): MetricRow {
  const name = fields.name === undefined ? "cpu" : fields.name;
  const tags = fields.tags ?? "{}";
  return {
    series: seriesKey(name, JSON.parse(tags) as Record<string, string>),
    name,
    value: 1,
    receivedMs: 0,
    tags,
    attributes: null,
    extra: null,
    msgId: "m1",
    ...fields,
  };
}

const samplesOf = (series: OutgoingSeries | undefined) =>
  series?.timestamps.map((t, i) => [t, series.values[i]]) ?? [];

const labelText = (labels: readonly { name: string; value: string }[]) =>
  labels.map((l) => `${l.name}=${l.value}`).join(",");

describe("metric and label names", () => {
  it("keeps valid names and makes others valid", () => {
    expect(metricNameOf("http_requests_total:rate5m")).toBe("http_requests_total:rate5m");
    expect(metricNameOf("cpu.usage-percent")).toBe("cpu_usage_percent");
    expect(metricNameOf("5xx")).toBe("_5xx");
    expect(metricNameOf("température")).toBe("temp_rature");
    expect(metricNameOf(null)).toBe(DEFAULT_METRIC_NAME);
    expect(metricNameOf("")).toBe(DEFAULT_METRIC_NAME);
  });

  it("makes label names valid and never one of Prometheus's reserved names", () => {
    expect(labelNameOf("host")).toBe("host");
    expect(labelNameOf("k8s.pod:name")).toBe("k8s_pod_name");
    expect(labelNameOf("1st")).toBe("_1st");
    expect(labelNameOf("")).toBe("_");
    expect(labelNameOf("__name__")).toBe("tag__name__");
    expect(labelNameOf("__tmp")).toBe("tag__tmp");
    expect(labelNameOf("_x")).toBe("_x");
  });

  it("sorts labels, drops empty values, and keeps the first of two tags that collide", () => {
    const labels = labelsOf("cpu", JSON.stringify({ zone: "a", "b.c": "1", b_c: "2", e: "" }));
    expect(labelText(labels)).toBe("__name__=cpu,b_c=1,zone=a");
  });

  it("keeps a tag named __proto__ as data", () => {
    const labels = labelsOf("cpu", '{"__proto__":"x"}');
    expect(labelText(labels)).toBe("__name__=cpu,tag__proto__=x");
  });
});

describe("seriesOfRows", () => {
  it("puts the samples of a series in one TimeSeries, sorted by time, the first of a timestamp kept", () => {
    const mapped = seriesOfRows([
      row({ timeMs: 30, value: 3, tags: '{"host":"a"}' }),
      row({ timeMs: 10, value: 1, tags: '{"host":"a"}' }),
      row({ timeMs: 5, value: 9, tags: '{"host":"b"}' }),
      row({ timeMs: 10, value: 2, tags: '{"host":"a"}' }),
      row({ timeMs: 20, value: 7, tags: '{"host":"a"}' }),
    ]);
    expect(mapped.samples).toBe(4);
    expect(mapped.sameTimestamp).toBe(1);
    expect(mapped.series.map((s) => [labelText(s.labels), samplesOf(s)])).toEqual([
      [
        "__name__=cpu,host=a",
        [
          [10, 1],
          [20, 7],
          [30, 3],
        ],
      ],
      ["__name__=cpu,host=b", [[5, 9]]],
    ]);
  });

  it("orders any samples by time, the first row of a timestamp kept, over spans narrow and wide", () => {
    // Narrow spans take the packed sort, spans over ~17 years of a large batch the comparing one.
    const time = fc.oneof(
      fc.integer({ min: 1_764_547_200_000, max: 1_764_547_200_050 }),
      fc.integer({ min: 0, max: 253_402_300_799_999 }),
    );
    fc.assert(
      fc.property(fc.array(time, { minLength: 1, maxLength: 300, size: "max" }), (times) => {
        const rows = times.map((timeMs, i) => row({ timeMs, value: i }));
        const expected: [number, number][] = [];
        const seen = new Set<number>();
        rows
          .map((r) => [r.timeMs, r.value] as [number, number])
          .sort((a, b) => a[0] - b[0]) // stable: of one timestamp, the first row stays first
          .forEach(([t, v]) => {
            if (!seen.has(t)) expected.push([t, v]);
            seen.add(t);
          });
        const mapped = seriesOfRows(rows);
        expect(samplesOf(mapped.series[0])).toEqual(expected);
        expect(mapped.sameTimestamp).toBe(rows.length - expected.length);
      }),
      { numRuns: 300 },
    );
  });

  it("treats tags in another order as the same series", () => {
    const mapped = seriesOfRows([
      row({ timeMs: 1, tags: '{"a":"1","b":"2"}' }),
      row({ timeMs: 2, tags: '{"b":"2","a":"1"}' }),
    ]);
    expect(mapped.series).toHaveLength(1);
    expect(samplesOf(mapped.series[0])).toHaveLength(2);
  });

  it("makes one series of two tag sets that become the same labels, the first sample of a time kept", () => {
    const mapped = seriesOfRows([
      row({ timeMs: 2, value: 1, tags: '{"a.b":"1"}' }),
      row({ timeMs: 1, value: 2, tags: '{"a_b":"1"}' }),
      row({ timeMs: 2, value: 3, tags: '{"a_b":"1"}' }),
    ]);
    expect(mapped.series.map((s) => labelText(s.labels))).toEqual(["__name__=cpu,a_b=1"]);
    expect(samplesOf(mapped.series[0])).toEqual([
      [1, 2],
      [2, 1],
    ]);
    expect(mapped.sameTimestamp).toBe(1);
  });

  it("counts the fields of JSON metrics a sample has no place for, each once", () => {
    const mapped = seriesOfRows([
      row({ timeMs: 1, extra: '{"unit":"%","source":{"a":1}}' }),
      row({ timeMs: 2 }),
      row({ timeMs: 3, attributes: '{"influx":{"field":"v"}}', extra: '{"influx":{"text":"x"}}' }),
    ]);
    expect(mapped.droppedFields).toBe(3);
    expect(extraFieldsOf({ attributes: null, extra: null })).toBe(0);
  });

  it("names a metric without a name", () => {
    const mapped = seriesOfRows([row({ timeMs: 1, name: null })]);
    expect(labelText(mapped.series[0]?.labels ?? [])).toBe(`__name__=${DEFAULT_METRIC_NAME}`);
  });
});

describe("the inverse of the edge's remote-write decoding", () => {
  it("sends a batch that came in by remote write out with the same series and samples", () => {
    const payload = prometheusBatch(500, 3);
    const incoming = decodeWriteRequest(payload.body, REQUEST_LIMITS.bodyBytes);
    const { columns } = runToEnd(
      pointsOfWriteRequest(incoming, new ExpansionBudget(REQUEST_LIMITS.bodyBytes)),
    );
    const metrics = columns.metrics();
    const rows = rowsOfEnvelope({ id: "msg-1", receivedAt: 0, key: "series", metrics });
    const outgoing = decodeWriteRequest(
      encodeWriteRequest(seriesOfRows(rows).series),
      REQUEST_LIMITS.bodyBytes,
    );
    const canonical = (request: typeof incoming) =>
      request.timeseries
        .map((s) => ({
          labels: labelText(
            [...s.labels].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
          ),
          samples: s.samples.map((p) => [p.timestamp, p.value]),
        }))
        .sort((a, b) => (a.labels < b.labels ? -1 : a.labels > b.labels ? 1 : 0));
    expect(canonical(outgoing)).toEqual(canonical(incoming));
    // Sent with its labels sorted, as remote write asks.
    for (const series of outgoing.timeseries) {
      const names = series.labels.map((l) => l.name);
      expect(names).toEqual([...names].sort());
    }
  });
});

describe("the WriteRequest written by hand", () => {
  it("reads back with the generated protobuf schema, whatever the labels, values and times", () => {
    const label = fc.record({ name: fc.string(), value: fc.string({ unit: "binary" }) });
    const series = fc.integer({ min: 0, max: 40 }).chain((n) =>
      fc.record({
        labels: fc.array(label, { maxLength: 5 }),
        timestamps: fc.array(
          fc.oneof(
            fc.integer({ min: -(2 ** 40), max: 2 ** 45 }),
            // Each byte count's edges, and the halves the writer splits past 2^31 at.
            fc.constantFrom(
              0,
              127,
              128,
              -1,
              ...[31, 32, 35, 42, 49, 53]
                .flatMap((b) => [2 ** b - 1, 2 ** b])
                .filter(Number.isSafeInteger),
            ),
          ),
          { minLength: n, maxLength: n },
        ),
        values: fc.array(fc.double(), { minLength: n, maxLength: n }),
      }),
    );
    fc.assert(
      fc.property(fc.array(series, { maxLength: 6 }), (written) => {
        const read = fromBinary(WriteRequestSchema, writeRequestBytes(written));
        expect(
          read.timeseries.map((s) => ({
            labels: s.labels.map((l) => ({ name: l.name, value: l.value })),
            timestamps: s.samples.map((p) => Number(p.timestamp)),
            values: s.samples.map((p) => p.value),
          })),
        ).toStrictEqual(
          written.map((s) => ({
            labels: s.labels.map((l) => ({ name: l.name, value: l.value })),
            timestamps: s.timestamps,
            values: s.values,
          })),
        );
      }),
    );
  });

  it("is an empty body for no series, which receivers take as a check of the connection", () => {
    expect(writeRequestBytes([])).toHaveLength(0);
    expect(encodeWriteRequest([]).length).toBeGreaterThan(0); // Snappy's length prefix.
  });
});

describe("seriesOfMessages", () => {
  const RECEIVED_AT = Date.parse("2026-12-01T00:00:00Z");
  const metric = fc.record(
    {
      name: fc.constantFrom("cpu", "mem.used", "5xx"),
      value: fc.double({ noNaN: true, noDefaultInfinity: true }),
      timestamp: fc.integer({ min: RECEIVED_AT - 100, max: RECEIVED_AT }),
      tags: fc.dictionary(fc.constantFrom("host", "a.b", "a_b", "__name__"), fc.string(), {
        maxKeys: 2,
      }),
      unit: fc.constantFrom("s", "By"),
    },
    // A JSON API metric may leave out its name, time and tags; an agent's has a name and time.
    { requiredKeys: ["value"] },
  );

  it("makes of a batch's messages, columns or JSON, the series their rows make", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(metric, { minLength: 1, maxLength: 30 }), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.boolean(),
        fc.option(fc.integer({ min: RECEIVED_AT - 100, max: RECEIVED_AT + 1 })),
        (batches, columns, cutoff) => {
          const cutoffMs = cutoff ?? undefined;
          const messages = batches.flatMap((metrics, i) => {
            const agents = metrics.map((m) => ({ name: "up", timestamp: RECEIVED_AT, ...m }));
            const encoded = columns
              ? runToEnd(encodeSeriesMessagesV4(agents, RECEIVED_AT, 1024 * 1024)).map(
                  (m) => m.data,
                )
              : [encodeEnvelope({ id: `m${i}`, receivedAt: RECEIVED_AT, key: "message", metrics })];
            return encoded.map((data) => {
              const message = decodeMessage(data);
              if (!message.ok) throw new Error(message.message);
              return message;
            });
          });
          const rowsOfEach = messages.map((m) =>
            rowsOfMessage(m).filter((r) => cutoffMs === undefined || r.timeMs >= cutoffMs),
          );
          const all = messages.reduce((sum, m) => sum + rowsOfMessage(m).length, 0);
          const fromRows = seriesOfRows(rowsOfEach.flat());

          const mapped = seriesOfMessages(messages, cutoffMs);

          expect(mapped.series).toEqual(fromRows.series);
          expect(mapped.samples).toBe(fromRows.samples);
          expect(mapped.sameTimestamp).toBe(fromRows.sameTimestamp);
          expect(mapped.droppedFields).toBe(fromRows.droppedFields);
          expect(mapped.kept).toEqual(rowsOfEach.map((rows) => rows.length));
          expect(mapped.expired).toBe(all - rowsOfEach.flat().length);
        },
      ),
      { numRuns: 200 },
    );
  });
});
