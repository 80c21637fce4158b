import { request } from "node:http";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStreams } from "../../shared/stream-setup.ts";
import { testConfig } from "../helpers/ingest.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { freePort } from "../helpers/processes.ts";
import { alive, descendants } from "../helpers/process-tree.ts";
import { startServe, type ServeProcess } from "../helpers/serve.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * `SERVE_PROCESSES=2 npm run serve`: two server processes on one port, against a private
 * nats-server whose monitoring endpoint tells their connections apart. Each answers requests;
 * a stop signal stops both the way one server stops; one that dies takes the server down.
 */
const SEED_BODY = '{"data": {"value": 123.45}}';

let nats: NatsServer;
let monitor: string;
let nc: NatsConnection;
let jsm: JetStreamManager;
const started: ServeProcess[] = [];

async function startPool(): Promise<ServeProcess> {
  const s = await startServe({ NATS_URL: nats.url, INGEST_AUTH: "none", SERVE_PROCESSES: "2" });
  started.push(s);
  await waitFor("both server processes to listen", () =>
    listeningLines(s).length === 2 ? true : undefined,
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}\n--- server output ---\n${s.child.output()}`);
  });
  return s;
}

function listeningLines(s: ServeProcess): { port: number }[] {
  return s.child
    .output()
    .split("\n")
    .filter((line) => line.includes('"msg":"listening"'))
    .map((line) => JSON.parse(line) as { port: number });
}

beforeAll(async () => {
  const monitorPort = await freePort();
  nats = await startNatsServer(["-m", String(monitorPort)]);
  monitor = `http://127.0.0.1:${monitorPort}`;
  nc = await connect({ servers: nats.url });
  jsm = await nc.jetstreamManager();
  await ensureStreams(jsm, testConfig(nats.url));
});

afterAll(async () => {
  for (const s of started) await s.child.stop("SIGKILL");
  await nc.close();
  await nats.stop();
});

/** One POST of the seed's body on a connection of its own. */
function postSeed(base: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}/api/v1/metrics`,
      { method: "POST", agent: false, headers: { "content-type": "application/json" } },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => {
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(SEED_BODY);
  });
}

/** Messages each of the server processes' NATS connections published, from /connz. */
async function publishedByServerProcesses(): Promise<number[]> {
  const connz = (await (await fetch(`${monitor}/connz`)).json()) as {
    connections?: { name?: string; in_msgs: number }[];
  };
  return (connz.connections ?? [])
    .filter((c) => c.name === "metrics-ingest-server")
    .map((c) => c.in_msgs);
}

describe("SERVE_PROCESSES=2 npm run serve", () => {
  it("runs two server processes on one port, and both answer requests", async () => {
    const s = await startPool();
    const ports = listeningLines(s).map((line) => line.port);
    expect(ports).toEqual([s.port, s.port]);
    expect(descendants(s.child.process.pid ?? 0)).toHaveLength(2);

    const before = (await jsm.streams.info("METRICS")).state.messages;
    const answers = await Promise.all(Array.from({ length: 40 }, () => postSeed(s.base)));
    for (const answer of answers) {
      expect(answer.status, answer.body).toBe(202);
      expect(JSON.parse(answer.body)).toMatchObject({ status: "ok", accepted: 1 });
    }
    expect((await jsm.streams.info("METRICS")).state.messages - before).toBe(40);
    // Each process publishes on its own connection: both took a share of the requests.
    const published = await publishedByServerProcesses();
    expect(published).toHaveLength(2);
    for (const count of published) expect(count).toBeGreaterThan(0);
    expect(published.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(40);

    expect(await s.child.stop("SIGTERM")).toBe(0);
    expect(s.child.output().match(/"finished":true,"drained":true,"msg":"stopped"/g)).toHaveLength(
      2,
    );
  });

  it("on SIGTERM to the server's process alone, stops both server processes and exits 0", async () => {
    const s = await startPool();
    const pid = s.child.process.pid ?? 0;
    const children = descendants(pid);
    expect(children).toHaveLength(2);
    process.kill(pid, "SIGTERM"); // the primary only, as a process manager does
    expect(await s.child.exited).toBe(0);
    await waitFor("both server processes to end", () =>
      children.every((child) => !alive(child)) ? true : undefined,
    );
    await expect(postSeed(s.base)).rejects.toThrow(/ECONNREFUSED/);
  });

  it("when a server process dies, stops the other and exits 1 for its supervisor to restart", async () => {
    const s = await startPool();
    const pid = s.child.process.pid ?? 0;
    const [victim, other] = descendants(pid);
    if (victim === undefined || other === undefined) throw new Error("no two server processes");
    process.kill(victim, "SIGKILL");
    expect(await s.child.exited).toBe(1);
    expect(s.child.output()).toMatch(/"signal":"SIGKILL","msg":"a server process exited/);
    // The other stopped the way a server stops, its NATS connection drained.
    expect(s.child.output()).toMatch(/"finished":true,"drained":true,"msg":"stopped"/);
    expect(alive(other)).toBe(false);
  });
});
