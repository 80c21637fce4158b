import { request } from "node:http";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStreams } from "../../shared/stream-setup.ts";
import { testConfig } from "../helpers/ingest.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { startChild } from "../helpers/processes.ts";
import { postRaw, type RawAnswer } from "../helpers/raw-post.ts";
import { startServe, type ServeProcess } from "../helpers/serve.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * Who may write, through the real `npm run serve` process over real HTTP: the drive-by request
 * of a web page to a server in local development, DNS rebinding, scoped keys, and the log of
 * refused requests.
 */
let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let local: ServeProcess;
const started: ServeProcess[] = [];

const JSON_KEY = "json-scope-key-0123456789";
const AGENT_KEY = "agent-scope-key-0123456789";

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await nc.jetstreamManager();
  await ensureStreams(jsm, testConfig(nats.url));
  // As `npm run serve` runs for development: HOST=127.0.0.1, no key.
  local = await startServer({});
});

afterAll(async () => {
  for (const s of started) await s.child.stop("SIGKILL");
  await nc.close();
  await nats.stop();
});

async function startServer(env: Record<string, string>): Promise<ServeProcess> {
  const s = await startServe({ NATS_URL: nats.url, ...env });
  started.push(s);
  return s;
}

/** One request to `s`, with the Host header it is given. */
function send(
  s: ServeProcess,
  path: string,
  headers: Record<string, string>,
  body = "",
): Promise<RawAnswer> {
  return postRaw(s.port, path, headers, body);
}

/**
 * The error code of an answer: the API's `error.code`, or for OTLP the `google.rpc.Status`
 * detail (ErrorInfo) whose `reason` carries it.
 */
function codeOf(answer: RawAnswer): string | undefined {
  const body = JSON.parse(answer.body) as {
    error?: { code: string };
    details?: { reason?: string }[];
  };
  return body.error?.code ?? body.details?.find((d) => d.reason !== undefined)?.reason;
}

/** Messages in the stream: what any accepted request would have added to. */
async function streamMessages(): Promise<number> {
  return (await jsm.streams.info("METRICS")).state.messages;
}

let lines = 0;
/** A line of a series of its own, so that no two tests' points share an identity. */
const line = () => `drive_by_${++lines},host=a usage=1`;
const INFLUX_PATH = "/api/v2/write?bucket=b&precision=s";

describe("npm run serve in local development (no key, HOST=127.0.0.1)", () => {
  it("takes curl's request to 127.0.0.1 or localhost", async () => {
    const before = await streamMessages();
    const curl = { "content-type": "text/plain", host: `localhost:${local.port}` };
    expect((await send(local, INFLUX_PATH, curl, line())).status).toBe(204);
    const seed = { "content-type": "application/json", host: `127.0.0.1:${local.port}` };
    expect((await send(local, "/api/v1/metrics", seed, '{"data":{"value":1}}')).status).toBe(202);
    expect(await streamMessages()).toBe(before + 2);
  });

  it("refuses a web page's drive-by text/plain POST to /api/v2/write with 403, publishing nothing", async () => {
    const before = await streamMessages();
    const page = {
      "content-type": "text/plain",
      origin: "https://attacker.example",
      host: `127.0.0.1:${local.port}`,
    };
    const answer = await send(local, INFLUX_PATH, page, line());
    expect(answer.status).toBe(403);
    expect(codeOf(answer)).toBe("origin_not_allowed");
    // The same page's request to the JSON API and to health.
    expect(codeOf(await send(local, "/api/v1/metrics", page, '{"data":{"value":1}}'))).toBe(
      "origin_not_allowed",
    );
    expect(await streamMessages()).toBe(before);
  });

  it("refuses a request sent to another name (DNS rebinding) on every endpoint, publishing nothing", async () => {
    const before = await streamMessages();
    const rebound = { "content-type": "text/plain", host: "attacker.example" };
    for (const path of [INFLUX_PATH, "/api/v1/metrics", "/v1/metrics", "/api/v1/write"]) {
      const answer = await send(local, path, rebound, line());
      expect(answer.status, path).toBe(403);
      expect(codeOf(answer), path).toBe("host_not_allowed");
    }
    const health = await new Promise<number>((resolve, reject) => {
      request(
        {
          host: "127.0.0.1",
          port: local.port,
          path: "/api/v1/health",
          headers: { host: "attacker.example:8080" },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      )
        .on("error", reject)
        .end();
    });
    expect(health).toBe(403);
    expect(await streamMessages()).toBe(before);
  });

  it("refuses before reading the body: the answer comes while the body is still unsent", async () => {
    const answer = await new Promise<RawAnswer>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: local.port,
          method: "POST",
          path: INFLUX_PATH,
          headers: { host: "attacker.example", "content-length": "1000000" },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (text += chunk));
          res.on("end", () => {
            req.destroy();
            resolve({ status: res.statusCode ?? 0, body: text });
          });
        },
      );
      req.on("error", reject);
      req.write("cpu v=1\n"); // and nothing more: the rest of the million bytes never comes
    });
    expect(answer.status).toBe(403);
    expect(codeOf(answer)).toBe("host_not_allowed");
  });
});

describe("npm run serve with scoped keys", () => {
  let keyed: ServeProcess;
  beforeAll(async () => {
    keyed = await startServer({
      INGEST_API_KEYS: `${JSON_KEY}@json, ${AGENT_KEY}@influx,otlp`,
      LOG_LEVEL: "info",
    });
  });

  it("opens each key's endpoints, and answers 403 insufficient_scope on the others", async () => {
    const before = await streamMessages();
    const json = (key: string) =>
      send(
        keyed,
        "/api/v1/metrics",
        { "content-type": "application/json", authorization: `Bearer ${key}` },
        '{"data":{"value":1}}',
      );
    const influx = (key: string) =>
      send(keyed, INFLUX_PATH, { authorization: `Token ${key}` }, line());

    expect((await json(JSON_KEY)).status).toBe(202);
    expect((await influx(AGENT_KEY)).status).toBe(204);

    const wrongScope = await influx(JSON_KEY);
    expect(wrongScope.status).toBe(403);
    expect(JSON.parse(wrongScope.body)).toMatchObject({
      code: "forbidden", // what InfluxDB's clients read
      error: { code: "insufficient_scope" },
    });
    expect(codeOf(await json(AGENT_KEY))).toBe("insufficient_scope");
    const remoteWrite = await send(
      keyed,
      "/api/v1/write",
      {
        authorization: `Bearer ${AGENT_KEY}`,
        "content-type": "application/x-protobuf",
        "content-encoding": "snappy",
      },
      "",
    );
    expect(remoteWrite.status).toBe(403);
    expect(codeOf(remoteWrite)).toBe("insufficient_scope");
    expect(await streamMessages()).toBe(before + 2);
  });

  it("refuses a browser's request to an agent endpoint even with a valid key", async () => {
    const answer = await send(
      keyed,
      INFLUX_PATH,
      { authorization: `Token ${AGENT_KEY}`, origin: "https://app.example.com" },
      line(),
    );
    expect(answer.status).toBe(403);
    expect(codeOf(answer)).toBe("origin_not_allowed");
  });

  it("logs wrong keys at most once a second, counting them, and never the keys", async () => {
    const attempts = 300;
    const wrongKey = "wrong-key-never-logged-0123";
    const started = Date.now();
    for (let i = 0; i < attempts; i++) {
      const answer = await send(keyed, INFLUX_PATH, { authorization: `Token ${wrongKey}` }, line());
      expect(answer.status).toBe(401);
    }
    const elapsed = Date.now() - started;
    // The last attempts are written once their second is over.
    const lines = await waitFor("a refusal line counting every wrong key", () => {
      const refusals = keyed.child
        .output()
        .split("\n")
        .filter((line) => line.includes('"msg":"requests refused'))
        .map((line) => JSON.parse(line) as { attempts: number; codes: Record<string, number> });
      const counted = refusals.reduce((sum, l) => sum + (l.codes["unauthorized"] ?? 0), 0);
      return counted >= attempts ? refusals : undefined;
    });
    expect(lines.length).toBeLessThanOrEqual(Math.ceil(elapsed / 1000) + 3);
    const output = keyed.child.output();
    expect(output).not.toContain(wrongKey);
    expect(output).not.toContain(JSON_KEY);
    expect(output).not.toContain(AGENT_KEY);
    // No line per refused request.
    expect(output).not.toMatch(/"code":"unauthorized".*"msg":"refused"/);
  });
});

describe("npm run serve's key checks at start", () => {
  it("refuses a key shorter than 16 characters with a clear line, before listening", async () => {
    const child = startChild(process.execPath, ["server/main.ts"], {
      NATS_URL: "nats://127.0.0.1:1",
      PORT: "0",
      INGEST_API_KEYS: `a,${JSON_KEY}`,
    });
    expect(await child.exited).toBe(1);
    expect(child.output()).toContain(
      "INGEST_API_KEYS: entry 1 is shorter than 16 characters; make keys with npm run keygen",
    );
    expect(child.output()).not.toContain("listening");
  });
});
