import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { connect } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { PROJECT_ROOT } from "../helpers/processes.ts";

/** `npm run setup`, the operator's command for a production NATS, run as the script it is. */
const run = promisify(execFile);
let server: NatsServer;

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  await server.stop();
});

async function setup(env: Record<string, string>) {
  const { stdout } = await run(process.execPath, ["scripts/setup.ts"], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, NATS_URL: server.url, ...env },
  });
  return stdout.trim().split("\n");
}

describe("npm run setup", () => {
  it("creates the streams and the consumer, then changes nothing, then applies a change", async () => {
    expect(await setup({})).toEqual([
      "created stream METRICS",
      "created stream METRICS_DLQ",
      "created consumer METRICS/metrics-worker",
    ]);
    expect(await setup({})).toEqual([
      "unchanged stream METRICS",
      "unchanged stream METRICS_DLQ",
      "unchanged consumer METRICS/metrics-worker",
    ]);
    const changed = await setup({
      STREAM_DUPLICATE_WINDOW_SECONDS: "300",
      CONSUMER_MAX_DELIVER: "5",
    });
    expect(changed[0]).toMatch(
      /^updated stream METRICS: duplicate_window 120000000000 → 300000000000$/,
    );
    expect(changed[1]).toBe("unchanged stream METRICS_DLQ");
    expect(changed[2]).toMatch(/^updated consumer METRICS\/metrics-worker: max_deliver 10 → 5/);

    const nc = await connect({ servers: server.url });
    const jsm = await nc.jetstreamManager();
    expect((await jsm.streams.info("METRICS")).config.duplicate_window).toBe(300_000_000_000);
    expect((await jsm.consumers.info("METRICS", "metrics-worker")).config.max_deliver).toBe(5);
    await nc.close();
  });

  it("exits 1 with a clear message when NATS cannot be reached", async () => {
    const failure = await run(process.execPath, ["scripts/setup.ts"], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, NATS_URL: "nats://127.0.0.1:1", NATS_CONNECT_TIMEOUT_MS: "300" },
    }).then(
      () => undefined,
      (err: unknown) => err as { code: number; stderr: string },
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toMatch(/^setup: cannot reach NATS at nats:\/\/127.0.0.1:1/);
  });
});
