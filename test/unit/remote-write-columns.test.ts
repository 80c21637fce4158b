import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ExpansionBudget } from "../../edge/publish/expansion-budget.ts";
import { pointsOfWriteRequest } from "../../edge/remote-write/remote-write.ts";
import { runToEnd } from "../../shared/cooperative.ts";
import { encodeColumnsV4 } from "../../shared/envelope-v4-encoder.ts";
import { encodeSeriesMessagesV4 } from "../helpers/envelope-v4-by-metric.ts";
import {
  WriteRequestSchema,
  type WriteRequest,
} from "../../shared/gen/proto/prometheus/remote_pb.js";
import { outcome } from "../helpers/encoded-outcome.ts";
import { metricsOfWriteRequestByMetric } from "../helpers/remote-write-by-metric.ts";

const RECEIVED_AT = 1_777_593_600_000;
const MiB = 1024 * 1024;
const STALE_NAN = new Float64Array(
  new BigUint64Array([0x7ff0_0000_0000_0002n]).buffer,
)[0] as number;

/** Mostly `usual`, now and then one of `odd`. */
const mostly = <T>(usual: readonly T[], odd: readonly T[]) =>
  fc.oneof(
    { weight: 30, arbitrary: fc.constantFrom(...usual) },
    { weight: 1, arbitrary: fc.constantFrom(...odd) },
  );

// Labels and samples as Prometheus sends them, and now and then what the schema or the bounds
// refuse or skip: a missing, repeated or empty label name, a value past its length, a time out
// of range or ahead, NaN, infinities and staleness markers.
const label = fc.record({
  name: mostly(["job", "instance", "le", "__proto__", "1"], ["", "k".repeat(130)]),
  value: mostly(["node", "web-1:9100", "0.5", "é☀", ""], ["😀", "v".repeat(300)]),
});
const name = mostly(["up", "http_requests_total", "dísk"], ["", "m".repeat(260)]);
const sample = fc.record({
  value: mostly([0, 1.5, -0, 1e308, 42], [Number.NaN, STALE_NAN, Number.POSITIVE_INFINITY]),
  timestamp: mostly(
    [BigInt(RECEIVED_AT), BigInt(RECEIVED_AT - 15_000), BigInt(RECEIVED_AT + 1)],
    [BigInt(RECEIVED_AT + 3_600_000), 0n, -5n, 253_402_300_800_000n, 2n ** 62n],
  ),
});
const series = fc.record({
  labels: fc
    .tuple(name, fc.array(label, { maxLength: 3 }))
    .map(([n, labels]) => (n === "" ? labels : [{ name: "__name__", value: n }, ...labels])),
  samples: fc.array(sample, { maxLength: 6 }),
});

const aCase = fc.record({
  // Series are repeated, as a label set sent twice in one request.
  timeseries: fc
    .array(series, { minLength: 1, maxLength: 6 })
    .chain((all) => fc.array(fc.constantFrom(...all), { minLength: 1, maxLength: 12 })),
  limitBytes: mostly([undefined], [300, 2_000]),
  maxBytes: mostly([MiB], [300, 1_000]),
  maxFutureMs: fc.constantFrom(undefined, 600_000),
});

describe("remote write into columns", () => {
  it("property: refuses what a metric per sample refused, as it did, and publishes the same bytes", () => {
    fc.assert(
      fc.property(aCase, (c) => {
        const request: WriteRequest = create(WriteRequestSchema, { timeseries: c.timeseries });
        const budget = () => new ExpansionBudget(10_000, c.limitBytes);
        const bound =
          c.maxFutureMs === undefined
            ? undefined
            : { receivedAt: RECEIVED_AT, maxFutureMs: c.maxFutureMs };
        let skippedByMetric: unknown;
        let skippedByColumns: unknown;
        const byMetric = outcome(budget(), (spent) => {
          const { metrics, skipped } = runToEnd(
            metricsOfWriteRequestByMetric(request, spent, bound),
          );
          skippedByMetric = skipped;
          return runToEnd(encodeSeriesMessagesV4(metrics, RECEIVED_AT, c.maxBytes));
        });
        const byColumns = outcome(budget(), (spent) => {
          const { columns, skipped } = runToEnd(pointsOfWriteRequest(request, spent, bound));
          skippedByColumns = skipped;
          return runToEnd(encodeColumnsV4(columns, RECEIVED_AT, c.maxBytes));
        });
        expect(byColumns).toEqual(byMetric);
        expect(skippedByColumns).toEqual(skippedByMetric);
      }),
      { numRuns: 600 },
    );
  });
});
