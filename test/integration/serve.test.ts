import { Agent, request, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { connect as tcpConnect } from "node:net";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeEnvelope } from "../../shared/envelope.ts";
import { ensureStreams } from "../../shared/stream-setup.ts";
import { isLoopbackHost } from "../../edge/http/loopback.ts";
import { testConfig } from "../helpers/ingest.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { startServe, type ServeProcess } from "../helpers/serve.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * The self-hosted server (`npm run serve`) as its own process, over real HTTP, against a private
 * nats-server: the same handlers as the functions, keep-alive, timeouts and a graceful stop.
 */
const REQUEST_TIMEOUT_MS = 2000;
const SEED_BODY = '{"data": {"value": 123.45}}';

let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let serve: ServeProcess;
const started: ServeProcess[] = [];

async function startServer(env: Record<string, string> = {}): Promise<ServeProcess> {
  const s = await startServe({
    NATS_URL: nats.url,
    REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    ...env,
  });
  started.push(s);
  return s;
}

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await nc.jetstreamManager();
  await ensureStreams(jsm, testConfig(nats.url));
  serve = await startServer();
});

afterAll(async () => {
  for (const s of started) await s.child.stop("SIGKILL");
  await nc.close();
  await nats.stop();
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The client's local port: the same one means the same connection. */
  localPort: number | undefined;
  reusedSocket: boolean;
}

/** Reads a response whole, with the local port of the connection that carried it. */
function readAnswer(res: IncomingMessage, reusedSocket: boolean): Promise<Answer> {
  // Read now: once the body has ended, a kept-alive socket is back in the agent's pool.
  const localPort = res.socket.localPort;
  return new Promise((resolve, reject) => {
    let body = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => (body += chunk));
    res.on("end", () => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body, localPort, reusedSocket });
    });
    res.on("error", reject);
  });
}

/** One request with node:http, so that the connection it used can be told. */
function send(
  base: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; agent?: Agent } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      { method: init.method ?? "GET", headers: init.headers ?? {}, agent: init.agent ?? false },
      (res) => {
        readAnswer(res, req.reusedSocket).then(resolve, reject);
      },
    );
    req.on("error", reject);
    req.end(init.body);
  });
}

function postSeed(base: string, extra: { headers?: Record<string, string>; agent?: Agent } = {}) {
  return send(base, "/api/v1/metrics", {
    method: "POST",
    headers: { "content-type": "application/json", ...extra.headers },
    body: SEED_BODY,
    ...(extra.agent ? { agent: extra.agent } : {}),
  });
}

/** The stream's message of a 202 receipt holds exactly the seed's metric. */
async function expectInStream(receipt: { id: string; seq: number }): Promise<void> {
  const stored = await jsm.streams.getMessage("METRICS", { seq: receipt.seq });
  expect(stored.header.get("Nats-Msg-Id")).toBe(receipt.id);
  const decoded = decodeEnvelope(stored.data);
  expect(decoded.ok && decoded.envelope.metrics).toEqual([{ value: 123.45 }]);
}

function errorShape(code: string) {
  return {
    status: "error",
    error: expect.objectContaining({ code, message: expect.any(String) as unknown }) as unknown,
    requestId: expect.any(String) as unknown,
  };
}

describe("npm run serve", () => {
  it("answers the seed's request with 202 status ok, and the metric is in the stream", async () => {
    const res = await postSeed(serve.base);
    expect(res.status).toBe(202);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    const body = JSON.parse(res.body) as { status: string; id: string; seq: number };
    expect(body).toMatchObject({ status: "ok", accepted: 1, duplicate: false, stream: "METRICS" });
    await expectInStream(body);
  });

  it("keeps a connection alive across requests", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await postSeed(serve.base, { agent });
      const second = await postSeed(serve.base, { agent });
      expect([first.status, second.status]).toEqual([202, 202]);
      expect(first.headers["connection"]).toBe("keep-alive");
      expect(first.reusedSocket).toBe(false);
      expect(second.reusedSocket).toBe(true);
      expect(second.localPort).toBe(first.localPort);
      const ids = [first, second].map((r) => (JSON.parse(r.body) as { id: string }).id);
      expect(new Set(ids).size).toBe(2);
    } finally {
      agent.destroy();
    }
  });

  it("answers health with 200 and the stream", async () => {
    const res = await send(serve.base, "/api/v1/health");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ status: "ok", stream: { name: "METRICS" } });
  });

  it("answers 405, 404 and 400 in the API's JSON error shape", async () => {
    const wrongMethod = await send(serve.base, "/api/v1/metrics", { method: "GET" });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers["allow"]).toBe("POST");
    expect(JSON.parse(wrongMethod.body)).toEqual(errorShape("method_not_allowed"));

    const healthPost = await send(serve.base, "/api/v1/health", { method: "POST" });
    expect(healthPost.status).toBe(405);
    expect(JSON.parse(healthPost.body)).toEqual(errorShape("method_not_allowed"));

    const nowhere = await send(serve.base, "/api/v1/nothing-here?x=1");
    expect(nowhere.status).toBe(404);
    expect(nowhere.headers["content-type"]).toMatch(/^application\/json/);
    expect(JSON.parse(nowhere.body)).toEqual(errorShape("not_found"));

    const invalid = await send(serve.base, "/api/v1/metrics", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"data": {"value": "high"}}',
    });
    expect(invalid.status).toBe(400);
    expect(JSON.parse(invalid.body)).toEqual(errorShape("invalid_metrics"));
  });

  it("answers a request whose body stalls within REQUEST_TIMEOUT_MS, and keeps serving", async () => {
    const started = Date.now();
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = tcpConnect(serve.port, "127.0.0.1", () => {
        socket.write(
          "POST /api/v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" +
            '{"data": ',
        );
      });
      let received = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => (received += chunk));
      socket.on("close", () => {
        resolve(received);
      });
      socket.on("error", reject);
      // Far beyond the timeout: the test fails here rather than hanging if nothing happens.
      setTimeout(() => {
        socket.destroy();
        reject(new Error("the stalled request was neither answered nor closed in 10 s"));
      }, 10_000).unref();
    });
    const elapsed = Date.now() - started;
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(elapsed).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
    // The timeout is checked every second at most.
    expect(elapsed).toBeLessThan(REQUEST_TIMEOUT_MS + 2000);

    const after = await postSeed(serve.base);
    expect(after.status).toBe(202);
  });

  it("with no key and on loopback accepts requests; with INGEST_API_KEYS demands the key", async () => {
    // The shared server: HOST=127.0.0.1, no keys, INGEST_AUTH unset.
    expect((await postSeed(serve.base)).status).toBe(202);

    const keyed = await startServer({ INGEST_API_KEYS: "serve-test-key-0001" });
    const without = await postSeed(keyed.base);
    expect(without.status).toBe(401);
    expect(without.headers["www-authenticate"]).toMatch(/^Bearer/);
    expect(JSON.parse(without.body)).toEqual(errorShape("unauthorized"));
    const wrong = await postSeed(keyed.base, { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    const right = await postSeed(keyed.base, {
      headers: { authorization: "Bearer serve-test-key-0001" },
    });
    expect(right.status).toBe(202);
    await expectInStream(JSON.parse(right.body) as { id: string; seq: number });
    expect(await keyed.child.stop("SIGTERM")).toBe(0);
  });

  it("counts only loopback addresses as local", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) {
      expect(isLoopbackHost(host), host).toBe(true);
    }
    for (const host of ["0.0.0.0", "::", "10.0.0.1", "192.168.1.5", "ingest.example", ""]) {
      expect(isLoopbackHost(host), host).toBe(false);
    }
  });

  it("on SIGTERM refuses new connections, finishes the request in flight (202) and exits 0", async () => {
    const s = await startServer();
    const slow = slowPost(s.base);
    await slow.inFlight;

    process.kill(s.child.process.pid ?? 0, "SIGTERM");
    await waitFor("the stopping line", () =>
      s.child.output().includes('"msg":"stopping"') ? true : undefined,
    );
    expect(s.child.output()).toMatch(/"inFlight":1,"msg":"stopping"/);
    // No new connection is accepted while the request in flight finishes.
    await expect(send(s.base, "/api/v1/health")).rejects.toThrow(/ECONNREFUSED/);

    slow.finish();
    const res = await slow.answered;
    expect(res.status).toBe(202);
    expect(res.headers["connection"]).toBe("close");
    await expectInStream(JSON.parse(res.body) as { id: string; seq: number });
    expect(await s.child.exited).toBe(0);
    expect(s.child.output()).toMatch(/"finished":true,"drained":true,"msg":"stopped"/);
  });
  it("exits at once with 1 on a second signal, even with a request in flight", async () => {
    const s = await startServer();
    const slow = slowPost(s.base);
    const outcome = slow.answered.then(
      (res) => `answered ${res.status}`,
      (err: unknown) => `failed: ${String(err)}`,
    );
    await slow.inFlight;
    const pid = s.child.process.pid ?? 0;
    process.kill(pid, "SIGTERM");
    await waitFor("the stopping line", () =>
      s.child.output().includes('"msg":"stopping"') ? true : undefined,
    );
    const before = Date.now();
    process.kill(pid, "SIGINT");
    expect(await s.child.exited).toBe(1);
    expect(Date.now() - before).toBeLessThan(2000);
    expect(s.child.output()).toMatch(/"second signal; exiting now"/);
    // Cut off, not answered.
    expect(await outcome).toMatch(/^failed: .*(socket hang up|ECONNRESET)/);
  });
});

/**
 * A POST of the seed's body in two parts. `Expect: 100-continue` makes the server say when it
 * has the headers: from then on the request is in flight, until `finish()` sends the rest.
 */
function slowPost(base: string): {
  inFlight: Promise<void>;
  finish: () => void;
  answered: Promise<Answer>;
} {
  let finish: () => void = () => undefined;
  let onContinue: () => void = () => undefined;
  const inFlight = new Promise<void>((resolve) => {
    onContinue = resolve;
  });
  const answered = new Promise<Answer>((resolve, reject) => {
    const req = request(
      `${base}/api/v1/metrics`,
      {
        method: "POST",
        agent: false,
        headers: {
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength(SEED_BODY)),
          expect: "100-continue",
        },
      },
      (res) => {
        readAnswer(res, false).then(resolve, reject);
      },
    );
    req.on("error", reject);
    req.on("continue", () => {
      req.write(SEED_BODY.slice(0, 10));
      finish = () => req.end(SEED_BODY.slice(10));
      onContinue();
    });
  });
  return {
    inFlight,
    finish: () => {
      finish();
    },
    answered,
  };
}
