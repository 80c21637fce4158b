import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { encodeEnvelope } from "../../shared/envelope.ts";
import { ensureStreams, jsonSubject } from "../../shared/stream-setup.ts";
import { PULL_BATCH, PULL_EXPIRES_MS, PULLS_AT_ONCE } from "../../worker/message-puller.ts";
import { readRows } from "../helpers/sqlite.ts";
import { waitFor } from "../helpers/wait.ts";
import { workerBed } from "../helpers/worker-bed.ts";

/**
 * Debian 12's nats-server, which this machine runs as a service: it does not tell a client that
 * a pull with a byte limit has delivered its batch, so a pull that is not ended by the worker
 * lasts until it expires, with its messages delivered long before.
 */
const DEBIAN_NATS = "/usr/sbin/nats-server";
if (!existsSync(DEBIAN_NATS)) {
  throw new Error(
    `${DEBIAN_NATS} is missing: this test drains from Debian 12's nats-server 2.9 (apt-get install nats-server)`,
  );
}
process.env["NATS_SERVER_BIN"] = DEBIAN_NATS;

const bed = workerBed("worker-pulls-test-");

describe("pulls from nats-server 2.9", () => {
  it("end once they have their batch, not when they expire", async () => {
    expect(execFileSync(DEBIAN_NATS, ["--version"]).toString()).toMatch(/v2\.9\./);
    // Three rounds of pulls: pulls that waited to expire would need two expiries after the
    // first round's messages were stored.
    const messages = 3 * PULLS_AT_ONCE * PULL_BATCH;
    const { config, env, dbPath } = bed.isolated("pulls");
    await ensureStreams(bed.jsm, config);
    const js = bed.nc.jetstream();
    for (let i = 0; i < messages; i++) {
      const metrics = [{ name: "m", value: i, timestamp: 1_700_000_000_000 + i }];
      const data = encodeEnvelope({
        id: `p-${i}`,
        receivedAt: Date.now(),
        key: "message",
        metrics,
      });
      await js.publish(jsonSubject(config.stream), data, { msgID: `p-${i}` });
    }

    bed.startWorker(env);
    await waitFor("the first rows", () => (readRows(dbPath).length > 0 ? true : undefined), 30_000);
    const firstRows = Date.now();
    await waitFor(
      `${messages} rows`,
      () => (readRows(dbPath).length === messages ? true : undefined),
      4 * PULL_EXPIRES_MS,
    );
    const drainMs = Date.now() - firstRows;
    expect(
      drainMs,
      `${messages} messages drained in ${drainMs} ms after the first rows; pulls that waited for their expiry would take ≥ ${2 * PULL_EXPIRES_MS} ms`,
    ).toBeLessThan(PULL_EXPIRES_MS);
  }, 60_000);
});
