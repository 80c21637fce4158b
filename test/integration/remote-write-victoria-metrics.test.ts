import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeWriteRequest } from "../../edge/remote-write/remote-write.ts";
import { REQUEST_LIMITS } from "../../shared/limits.ts";
import { PATHS, prometheusBatch } from "../helpers/payloads.ts";
import { workerMetric } from "../helpers/processes.ts";
import {
  exportedSamples,
  labelsText,
  startVictoriaMetrics,
  type Receiver,
  type StoredSample,
} from "../helpers/receivers.ts";
import { remoteWriteBed } from "../helpers/remote-write-bed.ts";
import { waitFor } from "../helpers/wait.ts";
import { holdsLabel, samplesIn, startWriteProxy, type WriteProxy } from "../helpers/write-proxy.ts";

/**
 * The worker writing to a real VictoriaMetrics (Debian's 1.79, deduplicating within 1 ms)
 * through a proxy the tests can make fail: what was posted through each ingest protocol of
 * `npm run serve` is read back through VictoriaMetrics' own API, sample by sample.
 */
let vm: Receiver;
let proxy: WriteProxy;

/** A past timestamp for the samples of these tests: a fixed minute, far from any other test's. */
const T0 = Date.parse("2026-11-01T10:00:00Z");

beforeAll(async () => {
  vm = await startVictoriaMetrics();
  proxy = await startWriteProxy(vm.writeUrl);
}, 60_000);
afterAll(async () => {
  await proxy.close();
  await vm.close();
});

const bed = remoteWriteBed("rwvm", () => proxy.url, { CONSUMER_MAX_DELIVER: "20" });
const { post, postJson } = bed;

/** What VictoriaMetrics holds of a test's series (`test="<name>"`), once it holds `count`. */
async function storedOnce(test: string, count: number): Promise<StoredSample[]> {
  return waitFor(
    `${count} samples of test ${test} in VictoriaMetrics`,
    async () => {
      const samples = await exported(`{test="${test}"}`);
      if (samples.length > count) throw new Error(`${samples.length} samples, ${count} expected`);
      return samples.length === count ? samples : undefined;
    },
    30_000,
  );
}

const sample = (labels: Record<string, string>, timeMs: number, value: number): StoredSample => ({
  labels: labelsText(labels),
  timeMs,
  value,
});

/**
 * `actual` holds exactly the series and timestamps of `expected`, with the same values as far
 * as VictoriaMetrics keeps them: 12 significant decimal digits (documented).
 */
function expectSamples(actual: readonly StoredSample[], expected: readonly StoredSample[]): void {
  const withoutValue = (s: StoredSample) => [s.labels, s.timeMs];
  expect(actual.map(withoutValue)).toEqual(expected.map(withoutValue));
  actual.forEach((s, i) => {
    const want = expected[i]?.value ?? NaN;
    expect(Math.abs(s.value - want), `${s.labels} at ${s.timeMs}`).toBeLessThanOrEqual(
      Math.abs(want) * 1e-11,
    );
  });
}

const exported = (match: string) => exportedSamples(vm, match);

describe("every ingest protocol, read back from VictoriaMetrics", () => {
  it("stores the JSON API's metrics with valid names and labels", async () => {
    await postJson([
      { name: "cpu.load", value: 0.5, timestamp: T0, tags: { test: "json", "k8s.pod": "p-1" } },
      {
        name: "cpu.load",
        value: 0.75,
        timestamp: T0 + 1000,
        tags: { "k8s.pod": "p-1", test: "json" },
      },
      { value: 42, timestamp: new Date(T0).toISOString(), tags: { test: "json" } },
      {
        name: "disk",
        value: -1.5e300,
        timestamp: T0,
        tags: { test: "json", __name__: "x" },
        unit: "B",
      },
    ]);
    expect(await storedOnce("json", 4)).toEqual([
      sample({ __name__: "cpu_load", k8s_pod: "p-1", test: "json" }, T0, 0.5),
      sample({ __name__: "cpu_load", k8s_pod: "p-1", test: "json" }, T0 + 1000, 0.75),
      sample({ __name__: "disk", tag__name__: "x", test: "json" }, T0, -1.5e300),
      sample({ __name__: "metric", test: "json" }, T0, 42),
    ]);
    await waitFor("the dropped field to be counted", async () =>
      (await workerMetric(bed.workerPort, "worker_remote_write_dropped_fields_total")) >= 1
        ? true
        : undefined,
    );
  });

  it("stores InfluxDB line protocol", async () => {
    const ns = BigInt(T0) * 1_000_000n;
    await post(
      PATHS.influx,
      `weather,city=paris,test=influx temperature=21.5,humidity=40i ${ns}\nweather,city=oslo,test=influx temperature=-3 ${ns + 1_000_000_000n}\n`,
      { "Content-Type": "text/plain" },
    );
    expect(await storedOnce("influx", 3)).toEqual([
      sample({ __name__: "weather_humidity", city: "paris", test: "influx" }, T0, 40),
      sample({ __name__: "weather_temperature", city: "oslo", test: "influx" }, T0 + 1000, -3),
      sample({ __name__: "weather_temperature", city: "paris", test: "influx" }, T0, 21.5),
    ]);
  });

  it("stores OTLP gauges", async () => {
    const timeUnixNano = String(BigInt(T0) * 1_000_000n);
    const point = (queue: string, asDouble: number) => ({
      timeUnixNano,
      asDouble,
      attributes: [
        { key: "queue", value: { stringValue: queue } },
        { key: "test", value: { stringValue: "otlp" } },
      ],
    });
    await post(
      PATHS.otlp,
      JSON.stringify({
        resourceMetrics: [
          {
            scopeMetrics: [
              {
                metrics: [
                  {
                    name: "queue.depth",
                    gauge: { dataPoints: [point("orders", 5), point("mails", 7.25)] },
                  },
                ],
              },
            ],
          },
        ],
      }),
      { "Content-Type": "application/json" },
    );
    const stored = await storedOnce("otlp", 2);
    expect(stored.map((s) => [s.timeMs, s.value])).toEqual([
      [T0, 7.25],
      [T0, 5],
    ]);
    expect(stored.map((s) => s.labels)).toEqual([
      expect.stringMatching(/^__name__=queue_depth,.*queue=mails,test=otlp/),
      expect.stringMatching(/^__name__=queue_depth,.*queue=orders,test=otlp/),
    ]);
  });

  it("stores a Prometheus remote write batch with the same series, and sent again adds nothing", async () => {
    const payload = prometheusBatch(200, 3);
    const sent = decodeWriteRequest(payload.body, REQUEST_LIMITS.bodyBytes);
    // The batch's own labels, with the test's label to find them by.
    const expected = sent.timeseries
      .flatMap((series) => {
        const labels = Object.fromEntries(series.labels.map((l) => [l.name, l.value]));
        return series.samples.map((p) => sample(labels, Number(p.timestamp), p.value));
      })
      .sort((a, b) => (a.labels < b.labels ? -1 : a.labels > b.labels ? 1 : a.timeMs - b.timeMs));
    await post(PATHS.prometheus, payload.body, { ...payload.headers });
    const cluster = 'cluster="prod-eu-west-1"';
    const stored = await waitFor(
      "the remote write batch in VictoriaMetrics",
      async () => {
        const samples = await exported(`{${cluster}}`);
        return samples.length >= expected.length ? samples : undefined;
      },
      30_000,
    );
    expectSamples(stored, expected);

    // The agent retrying the batch (the edge knows it already), and the same samples once more
    // through the JSON API, which the worker does send again.
    await post(PATHS.prometheus, payload.body, { ...payload.headers });
    const again = sent.timeseries.slice(0, 20).flatMap((series) => {
      const tags = Object.fromEntries(
        series.labels.filter((l) => l.name !== "__name__").map((l) => [l.name, l.value]),
      );
      const name = series.labels.find((l) => l.name === "__name__")?.value;
      return series.samples.map((p) => ({
        name,
        tags,
        value: p.value,
        timestamp: Number(p.timestamp),
      }));
    });
    const sentBefore = await workerMetric(bed.workerPort, "worker_remote_write_samples_sent_total");
    await postJson(again);
    await waitFor("the same samples to be sent again", async () =>
      (await workerMetric(bed.workerPort, "worker_remote_write_samples_sent_total")) >=
      sentBefore + again.length
        ? true
        : undefined,
    );
    await sleep(1500);
    expectSamples(await exported(`{${cluster}}`), expected);
  });
});

describe("exactly once at the receiver", () => {
  it("adds nothing when a message whose samples are stored is delivered again", async () => {
    // Stored by VictoriaMetrics, yet answered 500 on every attempt of the worker's first
    // delivery: the message is nak'd and JetStream delivers it again.
    let failures = 0;
    proxy.decide = (request) => {
      if (!holdsLabel(request, "test", "redelivery")) return "forward";
      return failures++ < 5 ? "forward-then-fail" : "forward";
    };
    const redeliveredBefore = await workerMetric(
      bed.workerPort,
      "worker_messages_redelivered_total",
    );
    await postJson([
      { name: "orders", value: 1, timestamp: T0, tags: { test: "redelivery" } },
      { name: "orders", value: 2, timestamp: T0 + 1, tags: { test: "redelivery" } },
    ]);
    await waitFor(
      "the message's second delivery to be stored",
      async () =>
        failures > 5 &&
        (await workerMetric(bed.workerPort, "worker_messages_redelivered_total")) >
          redeliveredBefore
          ? true
          : undefined,
      60_000,
    );
    proxy.decide = () => "forward";
    await sleep(1500);
    expect(await exported('{test="redelivery"}')).toEqual([
      sample({ __name__: "orders", test: "redelivery" }, T0, 1),
      sample({ __name__: "orders", test: "redelivery" }, T0 + 1, 2),
    ]);
  }, 90_000);
});

/** The dead letters of the test's stream whose reason is `rejected`: their ids and details. */
async function rejectedLetters(): Promise<{ detail: string; body: string }[]> {
  const jsm = await bed.nc.jetstreamManager();
  const dlq = bed.env["NATS_DLQ_STREAM"] ?? "";
  const { state } = await jsm.streams.info(dlq);
  const letters: { detail: string; body: string }[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const letter = await jsm.streams.getMessage(dlq, { seq });
    if (letter.header.get("Dlq-Reason") !== "rejected") continue;
    letters.push({
      detail: letter.header.get("Dlq-Detail"),
      body: new TextDecoder().decode(letter.data),
    });
  }
  return letters;
}

describe("faults", () => {
  it("dead-letters only the message the receiver refuses with a 4xx, and stores its neighbours", async () => {
    // The worker stopped while the messages arrive, so that they make one batch.
    await bed.worker.stop();
    proxy.decide = (request) =>
      holdsLabel(request, "poison", "yes")
        ? { status: 400, text: "bad sample: poisoned on purpose" }
        : "forward";
    for (let i = 0; i < 6; i++) {
      await postJson([
        {
          name: "bisect",
          value: i,
          timestamp: T0 + i,
          tags: i === 3 ? { test: "bisect", poison: "yes" } : { test: "bisect" },
        },
      ]);
    }
    await bed.startWorker();
    const stored = await storedOnce("bisect", 5);
    expect(stored.map((s) => s.value)).toEqual([0, 1, 2, 4, 5]);
    const letters = await waitFor("the refused message in the dead-letter stream", async () => {
      const found = (await rejectedLetters()).filter((l) => l.body.includes('"poison"'));
      return found.length > 0 ? found : undefined;
    });
    expect(letters).toHaveLength(1);
    expect(letters[0]?.detail).toBe("400 bad sample: poisoned on purpose");
    // The receiver was asked for more than the one message at first: the batch was split.
    const refused = proxy.seen.filter(
      (s) => typeof s.action === "object" && holdsLabel(s.request, "test", "bisect"),
    );
    expect(Math.max(...refused.map((s) => samplesIn(s.request)))).toBeGreaterThan(1);
    expect(
      await workerMetric(bed.workerPort, 'worker_messages_dead_lettered_total{reason="rejected"}'),
    ).toBe(1);
    proxy.decide = () => "forward";
  }, 60_000);

  it("retries a receiver answering 500 until it recovers, keeping the messages in progress", async () => {
    let failures = 0;
    proxy.decide = (request) =>
      holdsLabel(request, "test", "flaky") && failures++ < 3
        ? { status: 500, text: "try later" }
        : "forward";
    const retriesBefore = await workerMetric(bed.workerPort, "worker_remote_write_retries_total");
    const redeliveredBefore = await workerMetric(
      bed.workerPort,
      "worker_messages_redelivered_total",
    );
    await postJson([
      { name: "flaky", value: 1, timestamp: T0, tags: { test: "flaky" } },
      { name: "flaky", value: 2, timestamp: T0 + 1, tags: { test: "flaky" } },
    ]);
    expect((await storedOnce("flaky", 2)).map((s) => s.value)).toEqual([1, 2]);
    expect(await workerMetric(bed.workerPort, "worker_remote_write_retries_total")).toBe(
      retriesBefore + 3,
    );
    expect(await workerMetric(bed.workerPort, "worker_messages_redelivered_total")).toBe(
      redeliveredBefore,
    );
    proxy.decide = () => "forward";
  }, 60_000);

  it("loses nothing and acks nothing early while the receiver is down for 10 s under load", async () => {
    const ackedBefore = await workerMetric(bed.workerPort, "worker_messages_stored_total");
    await vm.stop();
    let sent = 0;
    const started = Date.now();
    while (Date.now() - started < 10_000) {
      await postJson(
        Array.from({ length: 20 }, (_, i) => ({
          name: "outage",
          value: sent + i,
          timestamp: T0 + sent + i,
          tags: { test: "outage" },
        })),
      );
      sent += 20;
      expect(await workerMetric(bed.workerPort, "worker_messages_stored_total")).toBe(ackedBefore);
      await sleep(50);
    }
    await waitFor("the worker to find the receiver down", async () =>
      (await fetch(`http://127.0.0.1:${bed.workerPort}/readyz`)).status === 503 ? true : undefined,
    );
    expect(await workerMetric(bed.workerPort, "worker_messages_stored_total")).toBe(ackedBefore);
    await vm.start();
    const stored = await storedOnce("outage", sent);
    expect(stored.map((s) => s.value)).toEqual(Array.from({ length: sent }, (_, i) => i));
    await waitFor("the worker to be ready again", async () =>
      (await fetch(`http://127.0.0.1:${bed.workerPort}/readyz`)).status === 200 ? true : undefined,
    );
  }, 120_000);
});
