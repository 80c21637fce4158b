import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { freePort, PROJECT_ROOT } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";
import { connect, RetentionPolicy, StorageType } from "nats";
import { encodeEnvelope } from "../../shared/envelope.ts";
import { writeFigures, type ThroughputFigures } from "./figures.ts";
import { faultsNatsBinary, startNats, type NatsSetup, type SyncSetting } from "./nats-nodes.ts";
import { size } from "./scenario.ts";

/**
 * What the durable setting costs: JetStream publishes awaited one at a time, and with many in
 * flight, on the same nats-server 2.10 with and without `sync_interval: always`, in one run.
 * The message is the envelope of a one-metric request, as the edge publishes it.
 */
const started: NatsSetup[] = [];

afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
});

const SECONDS = size(5, 2);
const IN_FLIGHT = 256;

async function measure(sync: SyncSetting, payload: Uint8Array) {
  const nats = await startNats({ nodes: 1, sync });
  started.push(nats);
  const nc = await connect({ servers: nats.urls });
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({
      name: "BENCH",
      subjects: ["bench.>"],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
    });
    const js = nc.jetstream();
    let n = 0;
    let end = Date.now() + SECONDS * 1000;
    while (Date.now() < end) {
      await js.publish("bench.one", payload, { msgID: `a-${n}` });
      n++;
    }
    const awaited = n / SECONDS;
    let m = 0;
    end = Date.now() + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (Date.now() < end) {
          await js.publish("bench.many", payload, { msgID: `b-${m++}` });
        }
      }),
    );
    return {
      sync,
      awaitedPerSecond: Math.round(awaited),
      inFlightPerSecond: Math.round(m / SECONDS),
    };
  } finally {
    await nc.close();
    await nats.stop();
  }
}

it("measures awaited publishes/s with and without sync_interval: always", async () => {
  const payload = encodeEnvelope({
    key: "message",
    id: "6f1c2a0e-0000-4000-8000-000000000000",
    receivedAt: Date.now(),
    metrics: [{ name: "cpu.load", value: 0.75, tags: { host: "web-1" } }],
  });
  const results = [];
  for (const sync of ["default", "always"] as const) results.push(await measure(sync, payload));
  const version = started[0]?.version ?? "?";
  const figures: ThroughputFigures = {
    kind: "throughput",
    short: process.env["FAULTS_SHORT"] === "1",
    date: new Date().toISOString(),
    version,
    payloadBytes: payload.byteLength,
    seconds: SECONDS,
    inFlight: IN_FLIGHT,
    results,
  };
  writeFigures("00-durability-cost", figures);
  console.log(`[faults] durability cost: ${JSON.stringify(results)}`);
  for (const r of results) expect(r.awaitedPerSecond).toBeGreaterThan(0);
});

it("the compose file's nats/nats-server.conf makes nats-server 2.10 fsync every write", async () => {
  // The same file, on loopback ports and a temporary store instead of the container's.
  const dir = await mkdtemp(join(tmpdir(), "faults-conf-"));
  const [port, http] = [await freePort(), await freePort()];
  const conf = (await readFile(join(PROJECT_ROOT, "nats/nats-server.conf"), "utf8"))
    .replace(/^listen:.*$/m, `listen: 127.0.0.1:${port}`)
    .replace(/^http:.*$/m, `http: 127.0.0.1:${http}`)
    .replace(/store_dir:.*$/m, `store_dir: "${join(dir, "store")}"`);
  await writeFile(join(dir, "nats.conf"), conf);
  const child = spawn(faultsNatsBinary(), ["-c", join(dir, "nats.conf")], { stdio: "ignore" });
  try {
    const varz = await waitFor("the server's /varz", async () => {
      const res = await fetch(`http://127.0.0.1:${http}/varz`).catch(() => undefined);
      return res?.ok === true
        ? ((await res.json()) as { jetstream?: { config?: { sync_always?: boolean } } })
        : undefined;
    });
    expect(varz.jetstream?.config?.sync_always).toBe(true);
  } finally {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
    await rm(dir, { recursive: true, force: true });
  }
});
