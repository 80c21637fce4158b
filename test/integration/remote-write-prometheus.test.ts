import { setTimeout as sleep } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { compress } from "snappyjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WriteRequestSchema } from "../../shared/gen/proto/prometheus/remote_pb.js";
import { PATHS } from "../helpers/payloads.ts";
import { workerMetric } from "../helpers/processes.ts";
import {
  labelsText,
  prometheusSamples,
  startPrometheusReceiver,
  type Receiver,
  type StoredSample,
} from "../helpers/receivers.ts";
import { remoteWriteBed } from "../helpers/remote-write-bed.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * The worker writing to a real Prometheus (Debian's 2.42, `--web.enable-remote-write-receiver`):
 * the same series come back through its PromQL API; an out-of-order sample is dead-lettered with
 * Prometheus's own reason while the messages around it are stored.
 */
let prometheus: Receiver;

/** Recent enough for Prometheus's head block, a minute apart from the tests' own writes. */
const T0 = Math.floor(Date.now() / 1000) * 1000 - 10 * 60_000;

beforeAll(async () => {
  prometheus = await startPrometheusReceiver();
}, 60_000);

afterAll(() => prometheus.close());

const bed = remoteWriteBed("rwprom", () => prometheus.writeUrl);
const { post, postJson } = bed;

const sample = (labels: Record<string, string>, timeMs: number, value: number): StoredSample => ({
  labels: labelsText(labels),
  timeMs,
  value,
});

/** Prometheus's samples of a test's series, once it holds `count` of them. */
function storedOnce(test: string, count: number): Promise<StoredSample[]> {
  return waitFor(
    `${count} samples of test ${test} in Prometheus`,
    async () => {
      const samples = await prometheusSamples(
        prometheus,
        `{test="${test}"}`,
        T0 - 60_000,
        T0 + 5 * 60_000,
      );
      if (samples.length > count) throw new Error(`${samples.length} samples, ${count} expected`);
      return samples.length === count ? samples : undefined;
    },
    30_000,
  );
}

describe("Prometheus as the receiver", () => {
  it("gets back the series of a remote write batch and of JSON metrics, and the same samples sent again add nothing", async () => {
    const series = [
      { job: "api", instance: "10.0.0.1:8080", le: "0.5" },
      { job: "api", instance: "10.0.0.2:8080", le: "+Inf" },
    ].map((labels, s) => ({
      labels: Object.entries({ __name__: "http_requests_bucket", ...labels, test: "prom" })
        .map(([name, value]) => ({ name, value }))
        .sort((a, b) => (a.name < b.name ? -1 : 1)),
      samples: [0, 1, 2].map((j) => ({
        value: s * 10 + j + 0.25,
        timestamp: BigInt(T0 + j * 15_000),
      })),
    }));
    const body = compress(
      toBinary(WriteRequestSchema, create(WriteRequestSchema, { timeseries: series })),
    );
    await post(PATHS.prometheus, body, {
      "Content-Type": "application/x-protobuf",
      "Content-Encoding": "snappy",
      "X-Prometheus-Remote-Write-Version": "0.1.0",
    });
    await postJson([
      { name: "queue.size", value: 3, timestamp: T0, tags: { test: "prom", queue: "a" } },
      { value: 7, timestamp: T0 + 1000, tags: { test: "prom" } },
    ]);
    const expected = [
      sample(
        {
          __name__: "http_requests_bucket",
          instance: "10.0.0.1:8080",
          job: "api",
          le: "0.5",
          test: "prom",
        },
        T0,
        0.25,
      ),
      sample(
        {
          __name__: "http_requests_bucket",
          instance: "10.0.0.1:8080",
          job: "api",
          le: "0.5",
          test: "prom",
        },
        T0 + 15_000,
        1.25,
      ),
      sample(
        {
          __name__: "http_requests_bucket",
          instance: "10.0.0.1:8080",
          job: "api",
          le: "0.5",
          test: "prom",
        },
        T0 + 30_000,
        2.25,
      ),
      sample(
        {
          __name__: "http_requests_bucket",
          instance: "10.0.0.2:8080",
          job: "api",
          le: "+Inf",
          test: "prom",
        },
        T0,
        10.25,
      ),
      sample(
        {
          __name__: "http_requests_bucket",
          instance: "10.0.0.2:8080",
          job: "api",
          le: "+Inf",
          test: "prom",
        },
        T0 + 15_000,
        11.25,
      ),
      sample(
        {
          __name__: "http_requests_bucket",
          instance: "10.0.0.2:8080",
          job: "api",
          le: "+Inf",
          test: "prom",
        },
        T0 + 30_000,
        12.25,
      ),
      sample({ __name__: "metric", test: "prom" }, T0 + 1000, 7),
      sample({ __name__: "queue_size", queue: "a", test: "prom" }, T0, 3),
    ];
    expect(await storedOnce("prom", 8)).toEqual(expected);

    // The newest sample of each series once more, in a message of its own: Prometheus takes a
    // sample identical to its series' newest as stored already.
    const sentBefore = await workerMetric(bed.workerPort, "worker_remote_write_samples_sent_total");
    await postJson([
      { name: "queue.size", value: 3, timestamp: T0, tags: { test: "prom", queue: "a" } },
      { value: 7, timestamp: T0 + 1000, tags: { test: "prom" } },
    ]);
    await waitFor("the samples to be sent again", async () =>
      (await workerMetric(bed.workerPort, "worker_remote_write_samples_sent_total")) >=
      sentBefore + 2
        ? true
        : undefined,
    );
    await sleep(1000);
    expect(await storedOnce("prom", 8)).toEqual(expected);
  }, 60_000);

  it("dead-letters an out-of-order sample with Prometheus's reason and stores the messages around it", async () => {
    await postJson([
      { name: "ooo", value: 1, timestamp: T0 + 60_000, tags: { test: "ooo", s: "x" } },
    ]);
    await storedOnce("ooo", 1);
    // Stopped while the messages arrive, so that they make one batch.
    await bed.worker.stop();
    await postJson([
      { name: "ooo", value: 2, timestamp: T0 + 60_000, tags: { test: "ooo", s: "a" } },
    ]);
    await postJson([
      { name: "ooo", value: 3, timestamp: T0 + 30_000, tags: { test: "ooo", s: "x" } },
    ]);
    await postJson([
      { name: "ooo", value: 4, timestamp: T0 + 60_000, tags: { test: "ooo", s: "c" } },
    ]);
    await bed.startWorker();
    expect(await storedOnce("ooo", 3)).toEqual([
      sample({ __name__: "ooo", s: "a", test: "ooo" }, T0 + 60_000, 2),
      sample({ __name__: "ooo", s: "c", test: "ooo" }, T0 + 60_000, 4),
      sample({ __name__: "ooo", s: "x", test: "ooo" }, T0 + 60_000, 1),
    ]);
    const jsm = await bed.nc.jetstreamManager();
    const dlq = bed.env["NATS_DLQ_STREAM"] ?? "";
    const letter = await waitFor("the out-of-order message in the dead-letter stream", async () => {
      const { state } = await jsm.streams.info(dlq);
      return state.messages > 0 ? jsm.streams.getMessage(dlq, { seq: state.first_seq }) : undefined;
    });
    expect(letter.header.get("Dlq-Reason")).toBe("rejected");
    expect(letter.header.get("Dlq-Detail")).toBe("400 out of order sample");
    expect(new TextDecoder().decode(letter.data)).toContain('"value":3');
  }, 60_000);

  it("keeps the first value of a sample sent again with another, and stores the rest of its message", async () => {
    await postJson([
      { name: "dup", value: 1, timestamp: T0 + 90_000, tags: { test: "dup", s: "d" } },
    ]);
    await storedOnce("dup", 1);
    const jsm = await bed.nc.jetstreamManager();
    const dlq = bed.env["NATS_DLQ_STREAM"] ?? "";
    const lettersBefore = (await jsm.streams.info(dlq)).state.messages;
    const ackedBefore = await workerMetric(bed.workerPort, "worker_messages_stored_total");
    // One message: the first sample conflicts with the stored one ("duplicate sample for
    // timestamp", which makes Prometheus refuse the whole request), the second is new.
    await postJson([
      { name: "dup", value: 2, timestamp: T0 + 90_000, tags: { test: "dup", s: "d" } },
      { name: "dup", value: 5, timestamp: T0 + 90_000, tags: { test: "dup", s: "e" } },
    ]);
    expect(await storedOnce("dup", 2)).toEqual([
      sample({ __name__: "dup", s: "d", test: "dup" }, T0 + 90_000, 1),
      sample({ __name__: "dup", s: "e", test: "dup" }, T0 + 90_000, 5),
    ]);
    await waitFor("the message to be acked", async () =>
      (await workerMetric(bed.workerPort, "worker_messages_stored_total")) > ackedBefore
        ? true
        : undefined,
    );
    expect((await jsm.streams.info(dlq)).state.messages).toBe(lettersBefore);
  }, 60_000);
});
