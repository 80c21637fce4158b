import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeWriteRequest } from "../../edge/remote-write/remote-write.ts";
import { REQUEST_LIMITS } from "../../shared/limits.ts";
import { isolated } from "../helpers/isolated.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { PATHS, prometheusBatch } from "../helpers/payloads.ts";
import { startWorker, workerHttpPort, workerMetric, type Child } from "../helpers/processes.ts";
import {
  exportedSamples,
  labelsText,
  startVictoriaMetrics,
  type Receiver,
  type StoredSample,
} from "../helpers/receivers.ts";
import { startServe, type ServeProcess } from "../helpers/serve.ts";
import { waitFor } from "../helpers/wait.ts";
import { holdsLabel, samplesIn, startWriteProxy, type WriteProxy } from "../helpers/write-proxy.ts";

/**
 * The worker writing to a real VictoriaMetrics (Debian's 1.79, deduplicating within 1 ms)
 * through a proxy the tests can make fail: what was posted through each ingest protocol of
 * `npm run serve` is read back through VictoriaMetrics' own API, sample by sample.
 */
let nats: NatsServer;
let vm: Receiver;
let proxy: WriteProxy;
let serve: ServeProcess;
let worker: Child;
let workerPort: number;
let env: Record<string, string>;
let nc: NatsConnection;
let dir: string;
const cleanups: (() => Promise<unknown>)[] = [];

/** A past timestamp for the samples of these tests: a fixed minute, far from any other test's. */
const T0 = Date.parse("2026-11-01T10:00:00Z");

beforeAll(async () => {
  nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  vm = await startVictoriaMetrics();
  cleanups.push(() => vm.close());
  proxy = await startWriteProxy(vm.writeUrl);
  cleanups.push(() => proxy.close());
  dir = await mkdtemp(join(tmpdir(), "rw-vm-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  env = isolated(nats.url, "rwvm", dir, {
    DATABASE_URL: `remote-write+${proxy.url}`,
    CONSUMER_MAX_DELIVER: "20",
  }).env;
  await startTheWorker();
  cleanups.push(() => worker.stop());
  serve = await startServe(env);
  cleanups.push(() => serve.child.stop());
  nc = await connect({ servers: nats.url });
  cleanups.push(() => nc.close());
}, 60_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function startTheWorker(): Promise<void> {
  worker = startWorker(env);
  workerPort = await waitFor("the worker's HTTP port", () => workerHttpPort(worker), 20_000);
}

async function post(path: string, body: string | Uint8Array, headers: Record<string, string>) {
  const res = await fetch(`${serve.base}${path}`, { method: "POST", headers, body });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
}

const postJson = (metrics: unknown[]) =>
  post(PATHS.json, JSON.stringify({ data: metrics }), { "Content-Type": "application/json" });

/** What VictoriaMetrics holds of a test's series (`test="<name>"`), once it holds `count`. */
async function storedOnce(test: string, count: number): Promise<StoredSample[]> {
  return waitFor(
    `${count} samples of test ${test} in VictoriaMetrics`,
    async () => {
      const samples = await exportedSamples(vm, `{test="${test}"}`);
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
      (await workerMetric(workerPort, "worker_remote_write_dropped_fields_total")) >= 1
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
    const stored = await storedOnce("influx", 3);
    console.log(stored);
  });
});
