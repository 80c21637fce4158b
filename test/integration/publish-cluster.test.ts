import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStreams } from "../../shared/stream-setup.ts";
import { startNats, type NatsNode, type NatsSetup } from "../faults/nats-nodes.ts";
import { realIngestHandler, testConfig } from "../helpers/ingest.ts";
import { waitFor } from "../helpers/wait.ts";
import { post } from "../helpers/requests.ts";

/**
 * A 3-node cluster (nats-server 2.10, as the fault suite runs it) with an R3 stream whose leader
 * cannot reach its followers: a request's message is proposed but not stored. nats-server 2.10
 * answers a retry with the same message id `"duplicate": true` with sequence 0, and goes on doing
 * so for the whole duplicate window when a leader change drops the proposal, though the message
 * is never stored. A 2xx must name the sequence that holds the message.
 */
let nats: NatsSetup;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  nats = await startNats({ nodes: 3, sync: "default" });
  nc = await connect({ servers: nats.urls.split(",") });
  jsm = await nc.jetstreamManager({ timeout: 2000 });
  const config = testConfig(nats.urls, { STREAM_REPLICAS: "3" });
  // Placement needs every node's JetStream to have reported in.
  await waitFor("the streams", async () => (await ensureStreams(jsm, config)).length, 30_000);
});

afterAll(async () => {
  await nc.close();
  await nats.stop();
});

async function streamLeader(): Promise<NatsNode> {
  return waitFor(
    "a stream leader",
    async () => {
      const leader = (await jsm.streams.info("METRICS")).cluster?.leader;
      return nats.nodes.find((n) => n.name === leader);
    },
    30_000,
  );
}

describe("publishing to a clustered stream whose leader cannot commit", () => {
  it("answers a retry 503 until the stream holds the message, then 202 with its sequence", async () => {
    const leader = await streamLeader();
    const followers = nats.nodes.filter((n) => n !== leader);
    // Only the leader's address: a connection to a paused follower would time out by itself.
    const { handler, close } = realIngestHandler(
      testConfig(leader.url, { STREAM_REPLICAS: "3", PUBLISH_TIMEOUT_MS: "1000" }),
    );
    const headers = { "content-type": "application/json", "idempotency-key": "retried-key" };
    const body = '{"data": {"name": "cpu", "value": 1}}';
    try {
      expect((await handler(post('{"data": {"value": 0}}'))).status).toBe(202);
      for (const f of followers) f.pause();

      const first = await handler(post(body, headers));
      expect(first.status).toBe(503);
      const retry = await handler(post(body, headers));
      const retryBody = (await retry.json()) as { error?: { code?: string } };
      expect(retry.status, JSON.stringify(retryBody)).toBe(503);
      expect(retryBody.error?.code).toBe("publish_timeout");

      for (const f of followers) f.resume();
      const settled = await waitFor(
        "a 202 for the retried key",
        async () => {
          const res = await handler(post(body, headers));
          return res.status === 202 ? ((await res.json()) as { seq: number }) : undefined;
        },
        20_000,
      );
      const stored = await jsm.streams.getMessage("METRICS", { seq: settled.seq });
      expect(stored.header.get("Nats-Msg-Id")).toBe("retried-key");
    } finally {
      for (const f of followers) f.resume();
      await close();
    }
  });
});
