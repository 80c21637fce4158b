import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PRECISIONS, pointsOfText, type WriteTarget } from "../../edge/influx/influx-metrics.ts";
import { ExpansionBudget } from "../../edge/publish/expansion-budget.ts";
import { runToEnd } from "../../shared/cooperative.ts";
import type { EncodedMessage } from "../../shared/envelope-encoder.ts";
import { encodeColumnsV4 } from "../../shared/envelope-v4-encoder.ts";
import { encodeSeriesMessagesV4 } from "../helpers/envelope-v4-by-metric.ts";
import { decodeEnvelope } from "../../shared/envelope.ts";
import { outcome, type Outcome } from "../helpers/encoded-outcome.ts";
import { metricsOfTextByMetric } from "../helpers/influx-metrics-by-metric.ts";

const RECEIVED_AT = 1_777_593_600_000;
const RECEIVED_NS = `${RECEIVED_AT}000000`;
const MiB = 1024 * 1024;

interface Case {
  readonly text: string;
  readonly target: WriteTarget;
  readonly limitBytes: number | undefined;
  readonly maxBytes: number;
  readonly maxFutureMs: number | undefined;
}

/** The body converted and encoded both ways: point by point as metrics, and into columns. */
function bothWays(c: Case): { readonly byMetric: Outcome; readonly byColumns: Outcome } {
  const bytes = Buffer.byteLength(c.text);
  const budget = () => new ExpansionBudget(bytes, c.limitBytes);
  const byMetric = outcome(budget(), (spent) => {
    const metrics = runToEnd(
      metricsOfTextByMetric(c.text, c.target, RECEIVED_AT, spent, c.maxFutureMs),
    );
    return runToEnd(encodeSeriesMessagesV4(metrics, RECEIVED_AT, c.maxBytes));
  });
  const byColumns = outcome(budget(), (spent) => {
    const columns = runToEnd(pointsOfText(c.text, c.target, RECEIVED_AT, spent, c.maxFutureMs));
    return runToEnd(encodeColumnsV4(columns, RECEIVED_AT, c.maxBytes));
  });
  return { byMetric, byColumns };
}

/** Mostly `usual`, now and then one of `odd`. */
const mostly = <T>(usual: readonly T[], odd: readonly T[]) =>
  fc.oneof(
    { weight: 30, arbitrary: fc.constantFrom(...usual) },
    { weight: 1, arbitrary: fc.constantFrom(...odd) },
  );

// Pieces of lines as written, escapes included, and now and then what the schema or the bounds
// refuse: a name or tag past its length, NUL in a string, a string or metric past its size; or
// text with a surrogate pair (valid, but past what the bounds check decides alone).
const measurement = mostly(["cpu", "mem", "dísk", "a\\ b", "c\\,d"], ["m".repeat(260)]);
const tagKey = mostly(["host", "region", "a\\=b", "__proto__", "1"], ["k".repeat(130)]);
const tagValue = mostly(["web-1", "eu", "v\\ w", "é☀"], ["😀", "v".repeat(300)]);
const fieldKey = mostly(["f", "g", "usage", "h\\ i"], ["😀", "f".repeat(300)]);
const fieldValue = mostly(
  [
    "1.5",
    "-0",
    "1e3",
    "0.1",
    "3i",
    "-9223372036854775808i",
    "18446744073709551615u",
    "t",
    "false",
    '"hi"',
    '"a\\"b"',
  ],
  ['"x\u0000y"', '"😀"', `"${"s".repeat(5000)}"`],
);

/** Times in `precision`: now, an hour ahead, and some out of range. */
function timestamp(precision: keyof typeof PRECISIONS): fc.Arbitrary<string> {
  const now = BigInt(RECEIVED_NS) / PRECISIONS[precision];
  const hour = 3_600_000_000_000n / PRECISIONS[precision];
  return mostly(
    ["", ` ${now}`, ` ${now - 1n}`, ` ${now - hour}`, ` ${now + 1n}`],
    [` ${now + hour}`, " 1", " 0", " -5", " 253402300800000000000", " 9223372036854775807"],
  );
}

function line(precision: keyof typeof PRECISIONS): fc.Arbitrary<string> {
  const point = fc
    .tuple(
      measurement,
      fc.uniqueArray(fc.tuple(tagKey, tagValue), { maxLength: 3, selector: ([k]) => k }),
      fc.uniqueArray(fc.tuple(fieldKey, fieldValue), {
        minLength: 1,
        maxLength: 3,
        selector: ([k]) => k,
      }),
      timestamp(precision),
    )
    .map(([m, tags, fields, ts]) => {
      const tagText = tags.map(([k, v]) => `,${k}=${v}`).join("");
      const fieldText = fields.map(([k, v]) => `${k}=${v}`).join(",");
      return `${m}${tagText} ${fieldText}${ts}`;
    });
  const odd = fc.constantFrom("", "# a comment", "bad line", "m,t=1", "m f=1 x", "m,t=1,t=2 f=1");
  return fc.oneof({ weight: 20, arbitrary: point }, { weight: 1, arbitrary: odd });
}

const aCase: fc.Arbitrary<Case> = fc
  .record({
    bucket: fc.constantFrom("b", "telegraf"),
    org: fc.constantFrom(undefined, "o"),
    precision: fc.constantFrom("ns", "us", "ms", "s"),
  })
  .chain((target) =>
    fc.record({
      // Lines are repeated so that heads and series recur, as in an agent's batch.
      text: fc
        .array(line(target.precision), { minLength: 1, maxLength: 8 })
        .chain((lines) => fc.array(fc.constantFrom(...lines), { minLength: 1, maxLength: 30 }))
        .map((lines) => lines.join("\n")),
      target: fc.constant(target),
      limitBytes: mostly([undefined], [300, 2_000]),
      maxBytes: mostly([MiB], [400, 1_500]),
      maxFutureMs: fc.constantFrom(undefined, 600_000),
    }),
  );

describe("InfluxDB line protocol into columns", () => {
  it("property: refuses what a metric per point refused, as it did, and publishes the same bytes", () => {
    fc.assert(
      fc.property(aCase, (c) => {
        const { byMetric, byColumns } = bothWays(c);
        expect(byColumns).toEqual(byMetric);
      }),
      { numRuns: 600 },
    );
  });

  it("publishes each series once, its points as columns, which read back as its metrics", () => {
    const text = [
      "cpu,host=a,region=eu usage=1.5,idle=2i 1700000000000000001",
      "cpu,host=b,region=eu usage=3 1700000000000000001",
      "cpu,host=a,region=eu usage=4,idle=5i 1700000001000000000",
      'log,host=a msg="up" 1700000002000000000',
    ].join("\n");
    const target = { bucket: "b", org: undefined, precision: "ns" } as const;
    const columns = runToEnd(pointsOfText(text, target, RECEIVED_AT, new ExpansionBudget(1e6)));
    expect(columns.series.map((s) => s.metric.name)).toEqual([
      "cpu_usage",
      "cpu_idle",
      "cpu_usage",
      "log_msg",
    ]);
    expect(columns.seriesOf).toEqual([0, 1, 2, 0, 1, 3]);
    expect(columns.ns).toEqual([1, 1, 1, 0, 0, 0]);
    expect(columns.values).toEqual(["1.5", "2", "3", "4", "5", "1"]);
    const [message] = runToEnd(encodeColumnsV4(columns, RECEIVED_AT, MiB));
    const decoded = decodeEnvelope((message as EncodedMessage).data);
    if (!decoded.ok) throw new Error(decoded.message);
    expect(decoded.envelope.metrics).toEqual(columns.metrics());
    expect(decoded.envelope.metrics[0]).toEqual({
      name: "cpu_usage",
      value: 1.5,
      timestamp: "2023-11-14T22:13:20.000000001Z",
      tags: { host: "a", region: "eu" },
      influx: { bucket: "b", measurement: "cpu", field: "usage", type: "float" },
    });
    expect(decoded.envelope.metrics[5]).toMatchObject({
      name: "log_msg",
      influx: { type: "string", text: "up" },
    });
  });
});
