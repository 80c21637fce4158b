import { AckPolicy, headers } from "nats";
import { describe, expect, it } from "vitest";
import { decodeEnvelope } from "../../shared/envelope.ts";
import { ensureStreams, jsonSubject } from "../../shared/stream-setup.ts";
import { rowsOfEnvelope } from "../../worker/metric-rows.ts";
import { openSqliteStore } from "../../worker/sqlite-store.ts";
import { DLQ_HEADERS } from "../../worker/dead-letters.ts";
import { realIngestHandler, testConfig } from "../helpers/ingest.ts";
import { startWorker } from "../helpers/processes.ts";
import { readRows } from "../helpers/sqlite.ts";
import { waitFor } from "../helpers/wait.ts";
import { workerBed } from "../helpers/worker-bed.ts";
import { post } from "../helpers/requests.ts";

const bed = workerBed("worker-test-");

describe("worker", () => {
  it("stores every metric of an accepted request as one row, with its fields", async () => {
    const { config, env, dbPath } = bed.isolated("basic");
    bed.startWorker(env);
    await waitFor("the worker's consumer", () =>
      bed.jsm.consumers.info(config.stream.name, config.consumer.name).catch(() => undefined),
    );
    const { handler, close } = realIngestHandler(config);
    const res = await handler(
      post(
        JSON.stringify({
          data: [
            { value: 123.45 },
            { name: "cpu", value: 0.5, timestamp: "2026-01-02T03:04:05.678Z", tags: { host: "a" } },
            { name: "mem", value: 7, timestamp: 1_700_000_000_000, unit: "MiB" },
          ],
        }),
      ),
    );
    await close();
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };

    const rows = await waitFor("3 rows", () => {
      const r = readRows(dbPath);
      return r.length >= 3 ? r : undefined;
    });
    expect(rows).toHaveLength(3);
    expect(rows.map((r) => [r.dedup_key, r.name, r.value])).toEqual([
      [`${id}/0`, null, 123.45],
      [`${id}/1`, "cpu", 0.5],
      [`${id}/2`, "mem", 7],
    ]);
    expect(rows[0]?.time_ms).toBe(rows[0]?.received_ms);
    expect(rows[1]?.time_ms).toBe(Date.parse("2026-01-02T03:04:05.678Z"));
    expect(JSON.parse(rows[1]?.tags ?? "")).toEqual({ host: "a" });
    expect(rows[2]?.time_ms).toBe(1_700_000_000_000);
    expect(JSON.parse(rows[2]?.metric ?? "")).toEqual({
      name: "mem",
      value: 7,
      timestamp: 1_700_000_000_000,
      unit: "MiB",
    });
  });

  it("stores a message once even when it is delivered twice (commit, then a crash before the ack)", async () => {
    const { config, env, dbPath } = bed.isolated("twice");
    await ensureStreams(bed.jsm, config);
    const { handler, close } = realIngestHandler(config);
    const res = await handler(post('{"data": [{"value": 1}, {"value": 2}]}'));
    await close();
    expect(res.status).toBe(202);

    // Play a worker that committed the message's rows and died before acking it.
    const consumer = await bed.nc
      .jetstream()
      .consumers.get(config.stream.name, config.consumer.name);
    const msg = await consumer.next({ expires: 5000 });
    if (!msg) throw new Error("the message was not delivered");
    const decoded = decodeEnvelope(msg.data);
    if (!decoded.ok) throw new Error(decoded.message);
    const store = openSqliteStore(dbPath);
    expect(await store.insert(rowsOfEnvelope(decoded.envelope))).toBe(2);
    await store.close();
    msg.nak();

    bed.startWorker(env);
    await waitFor(
      "the redelivered message acked",
      async () => {
        const info = await bed.jsm.consumers.info(config.stream.name, config.consumer.name);
        return info.num_ack_pending === 0 &&
          info.num_pending === 0 &&
          info.delivered.consumer_seq >= 2
          ? info
          : undefined;
      },
      15_000,
    );
    expect(readRows(dbPath).map((r) => r.value)).toEqual([1, 2]);
    expect((await bed.jsm.streams.info(config.stream.name)).state.messages).toBe(0);
  });

  it("dead-letters a message that can never be stored, and stores the rest", async () => {
    const { config, env, dbPath } = bed.isolated("poison");
    bed.startWorker(env);
    await waitFor("the worker's consumer", () =>
      bed.jsm.consumers.info(config.stream.name, config.consumer.name).catch(() => undefined),
    );
    const js = bed.nc.jetstream();
    const h = headers();
    h.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    await js.publish(jsonSubject(config.stream), new TextEncoder().encode("not json"), {
      headers: h,
    });
    await js.publish(jsonSubject(config.stream), new TextEncoder().encode('{"v":9,"metrics":[]}'));
    const { handler, close } = realIngestHandler(config);
    expect((await handler(post('{"data": {"value": 42}}'))).status).toBe(202);
    await close();

    await waitFor("two dead letters", async () => {
      const info = await bed.jsm.streams.info(config.stream.dlqName);
      return info.state.messages === 2 ? info : undefined;
    });
    const first = await bed.jsm.streams.getMessage(config.stream.dlqName, { seq: 1 });
    expect(new TextDecoder().decode(first.data)).toBe("not json");
    expect(first.header.get(DLQ_HEADERS.reason)).toBe("undecodable");
    expect(first.header.get(DLQ_HEADERS.stream)).toBe(config.stream.name);
    expect(first.header.get(DLQ_HEADERS.streamSeq)).toBe("1");
    expect(first.header.get(DLQ_HEADERS.deliveries)).toBe("1");
    expect(first.header.get("traceparent")).toBe(h.get("traceparent"));
    const second = await bed.jsm.streams.getMessage(config.stream.dlqName, { seq: 2 });
    expect(second.header.get(DLQ_HEADERS.reason)).toBe("unknown_version");

    const rows = await waitFor("the good metric stored", () => {
      const r = readRows(dbPath);
      return r.length > 0 ? r : undefined;
    });
    expect(rows.map((r) => r.value)).toEqual([42]);
  });

  it("exits 1 with a clear message when the configuration is invalid, before connecting", async () => {
    const bad = startWorker({
      NATS_URL: bed.server.url,
      WORKER_BATCH_SIZE: "0",
      STREAM_REPLICAS: "x",
    });
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toContain("WORKER_BATCH_SIZE");
    expect(bad.output()).toContain("STREAM_REPLICAS");
  });
});

describe("stream setup", () => {
  it("is idempotent: a second run changes nothing", async () => {
    const { config } = bed.isolated("setup");
    const first = await ensureStreams(bed.jsm, config);
    const second = await ensureStreams(bed.jsm, config);
    expect(first.every((c) => c.startsWith("created"))).toBe(true);
    expect(second.every((c) => c.startsWith("unchanged"))).toBe(true);
    const consumer = await bed.jsm.consumers.info(config.stream.name, config.consumer.name);
    expect(consumer.config.ack_policy).toBe(AckPolicy.Explicit);
    expect(consumer.config.max_ack_pending).toBe(config.consumer.maxAckPending);

    const changed = await ensureStreams(
      bed.jsm,
      testConfig(bed.server.url, { ...isolatedEnv("setup"), STREAM_MAX_BYTES: "4096" }),
    );
    expect(changed[0]).toMatch(/^updated stream S_setup: max_bytes/);
  });
});

function isolatedEnv(name: string): Record<string, string> {
  return bed.isolated(name).env;
}
