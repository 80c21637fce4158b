import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { natsOptions } from "../../shared/nats-connection.ts";
import { ensureStreams } from "../../shared/stream-setup.ts";
import { realIngestHandler } from "../helpers/ingest.ts";
import { isolated } from "../helpers/isolated.ts";
import {
  makeOperatorMode,
  makeTlsFiles,
  tlsArgs,
  type OperatorMode,
  type TlsFiles,
} from "../helpers/nats-auth.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { startWorker, type Child } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";
import { post } from "../helpers/requests.ts";

/**
 * Each way of securing the NATS connection, against a private nats-server that demands it: the
 * ingest handler and the worker work with the right secret, and with a wrong one the handler
 * answers 503 and logs one clear line, the worker stops at start with a clear message, and
 * neither ever shows the secret.
 */
let dir: string;
let tls: TlsFiles;
let otherTls: TlsFiles;
let operator: OperatorMode;
let worker: Child | undefined;
/** Every server started here, stopped at the end even when a setup failed half-way. */
const servers: NatsServer[] = [];

async function privateServer(args: readonly string[] = []): Promise<NatsServer> {
  const server = await startNatsServer(args);
  servers.push(server);
  return server;
}

const secret = (label: string) => `${label}-${randomBytes(12).toString("hex")}`;
const TOKEN = secret("token");
const WRONG_TOKEN = secret("token");
const PASSWORD = secret("password");
const WRONG_PASSWORD = secret("password");

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nats-security-"));
  tls = await makeTlsFiles(dir);
  otherTls = await makeTlsFiles(dir, "other");
  operator = await makeOperatorMode(dir);
});

afterEach(async () => {
  const running = worker;
  worker = undefined;
  await running?.stop("SIGKILL");
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await rm(dir, { recursive: true, force: true });
});

/** A logger like the function's, writing its JSON lines where the test can read them. */
function capturedLogger() {
  const lines: string[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(line) });
  const records = () => lines.map((l) => JSON.parse(l) as { level: number; msg: string });
  return { logger, text: () => lines.join(""), records };
}

interface SecuredServer {
  readonly name: string;
  /** The nats-server's arguments beyond the helper's own. */
  readonly serverArgs: () => string[];
  readonly url: (server: NatsServer) => string;
  /** The variables that connect; `wrong` holds the ones that must not. */
  readonly right: () => Record<string, string>;
  readonly wrong: () => Record<string, string>;
  /** What the one error line and the worker's message must say about the wrong secret. */
  readonly problem: RegExp;
  /** Texts that no log line or answer may contain. */
  readonly secrets: () => readonly string[];
}

const nats = (s: NatsServer) => s.url;

const cases: readonly SecuredServer[] = [
  {
    name: "token",
    serverArgs: () => ["--auth", TOKEN],
    url: nats,
    right: () => ({ NATS_TOKEN: TOKEN }),
    wrong: () => ({ NATS_TOKEN: WRONG_TOKEN }),
    problem:
      /NATS at nats:\/\/127\.0\.0\.1:\d+ refused the credentials \(authentication: token; AUTHORIZATION_VIOLATION\); check NATS_TOKEN/,
    secrets: () => [TOKEN, WRONG_TOKEN],
  },
  {
    name: "user_password",
    serverArgs: () => ["--user", "ingest", "--pass", PASSWORD],
    url: nats,
    right: () => ({ NATS_USER: "ingest", NATS_PASSWORD: PASSWORD }),
    wrong: () => ({ NATS_USER: "ingest", NATS_PASSWORD: WRONG_PASSWORD }),
    problem:
      /refused the credentials \(authentication: user\/password; AUTHORIZATION_VIOLATION\); check NATS_USER and NATS_PASSWORD/,
    secrets: () => [PASSWORD, WRONG_PASSWORD],
  },
  {
    name: "creds",
    serverArgs: () => ["-c", operator.configFile],
    url: nats,
    right: () => ({ NATS_CREDS: operator.creds }),
    // A well-formed .creds file, of a user whose account the server does not know.
    wrong: () => ({ NATS_CREDS: operator.strangerCreds }),
    problem:
      /refused the credentials \(authentication: creds; AUTHORIZATION_VIOLATION\); check NATS_CREDS/,
    secrets: () => [...operator.seeds, "NKEY SEED", "NATS USER JWT"],
  },
  {
    name: "tls",
    serverArgs: () => tlsArgs(tls),
    url: (s) => `tls://127.0.0.1:${s.port}`,
    right: () => ({ NATS_CA: tls.caPem }),
    // tls:// without NATS_CA: the system's CAs do not know the private one.
    wrong: () => ({}),
    problem:
      /TLS with NATS at tls:\/\/127\.0\.0\.1:\d+ failed \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): the server's certificate is not trusted by the system's CAs .*set NATS_CA/,
    secrets: () => ["BEGIN CERTIFICATE"],
  },
];

describe.each(cases)("NATS secured with $name", (c) => {
  let url: string;
  let nc: NatsConnection | undefined;
  let jsm: JetStreamManager;
  const setup = (overrides: Record<string, string>) =>
    isolated(url, c.name, dir, { PUBLISH_TIMEOUT_MS: "2000", ...overrides });

  beforeAll(async () => {
    url = c.url(await privateServer(c.serverArgs()));
    const { config } = setup(c.right());
    nc = await connect(natsOptions(config.nats, "test-setup"));
    jsm = await nc.jetstreamManager();
    await ensureStreams(jsm, config);
  });

  afterAll(async () => {
    await nc?.close();
  });

  it("the ingest handler answers 202 with the right secret, and the message is in the stream", async () => {
    const { config } = setup(c.right());
    const { handler, close } = realIngestHandler(config);
    const res = await handler(post('{"data": {"name": "secured", "value": 42}}'));
    await close();

    expect(res.status).toBe(202);
    const body = (await res.json()) as { id: string; seq: number; stream: string };
    expect(body.stream).toBe(config.stream.name);
    const stored = await jsm.streams.getMessage(config.stream.name, { seq: body.seq });
    expect(stored.header.get("Nats-Msg-Id")).toBe(body.id);
  });

  it("with a wrong secret it answers 503 nats_unavailable and logs one clear error line", async () => {
    const { config } = setup(c.wrong());
    const log = capturedLogger();
    const { handler, close } = realIngestHandler(config, log.logger);
    // Two requests, two connection attempts, one error line: the failure did not change.
    const answers = [
      await handler(post('{"data": {"value": 1}}')),
      await handler(post('{"data": {"value": 2}}')),
    ];
    await close();

    for (const res of answers) {
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("2");
      const text = await res.text();
      expect((JSON.parse(text) as { error: { code: string } }).error.code).toBe("nats_unavailable");
      for (const s of c.secrets()) expect(text).not.toContain(s);
    }
    const errors = log.records().filter((r) => r.level >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toMatch(c.problem);
    for (const s of c.secrets()) expect(log.text()).not.toContain(s);
  });

  it("with a wrong secret the worker exits non-zero at start, saying why", async () => {
    const { env } = setup(c.wrong());
    const started = Date.now();
    worker = startWorker(env);
    const code = await Promise.race([worker.exited, sleep(10_000).then(() => "still running")]);

    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(10_000);
    const output = worker.output();
    expect(output).toMatch(c.problem);
    expect(output).toMatch(/^worker: .+/m); // one line, the program's name first
    for (const s of c.secrets()) expect(output).not.toContain(s);
  });

  it("with the right secret the worker starts, makes its consumer, and stops on SIGTERM", async () => {
    const { config, env } = setup(c.right());
    worker = startWorker(env);
    const running = worker;
    await waitFor("the worker's consumer", async () => {
      if (running.process.exitCode !== null) throw new Error(`worker exited:\n${running.output()}`);
      return jsm.consumers.info(config.stream.name, config.consumer.name).catch(() => undefined);
    });
    await waitFor("worker started", () =>
      running.output().includes('"msg":"worker started"') ? true : undefined,
    );

    expect(await running.stop("SIGTERM")).toBe(0);
    for (const s of c.secrets()) expect(running.output()).not.toContain(s);
  });
});

describe("what the client refuses by itself", () => {
  let plain: NatsServer;
  let secured: NatsServer;

  beforeAll(async () => {
    [plain, secured] = await Promise.all([privateServer(), privateServer(tlsArgs(tls))]);
  });

  async function refusal(url: string, env: Record<string, string>) {
    const { config } = isolated(url, "refused", dir, env);
    const log = capturedLogger();
    const { handler, close } = realIngestHandler(config, log.logger);
    const res = await handler(post('{"data": {"value": 1}}'));
    await close();
    const errors = log.records().filter((r) => r.level >= 50);
    return { res, errors, text: log.text() };
  }

  it("a tls:// address never falls back to a server without TLS", async () => {
    const { res, errors } = await refusal(`tls://127.0.0.1:${plain.port}`, {});
    expect(res.status).toBe(503);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toMatch(
      /NATS at tls:\/\/127\.0\.0\.1:\d+ does not offer TLS, which NATS_URL \(tls:\/\/\) or NATS_CA asks for/,
    );
  });

  it("a certificate signed by another CA than NATS_CA is refused", async () => {
    const { res, errors, text } = await refusal(`tls://127.0.0.1:${secured.port}`, {
      NATS_CA: otherTls.caPem,
    });
    expect(res.status).toBe(503);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toMatch(
      /failed \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\).*trusted by NATS_CA/,
    );
    expect(text).not.toContain("BEGIN CERTIFICATE");
  });

  it("a NATS_CREDS that is not a .creds file is named as such, without its contents", async () => {
    const garbled = operator.creds.replace(/-----BEGIN USER NKEY SEED-----[^]*$/, "");
    const { res, errors, text } = await refusal(plain.url, { NATS_CREDS: garbled });
    expect(res.status).toBe(503);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toMatch(
      /^NATS_CREDS is not the contents of a \.creds file \(BAD_CREDS\)/,
    );
    expect(text).not.toContain("NATS USER JWT");
  });

  it("with NATS_CA a nats:// address to a TLS server is upgraded and checked too", async () => {
    const { config } = isolated(`nats://127.0.0.1:${secured.port}`, "tls_upgrade", dir, {
      NATS_CA: tls.caPem,
    });
    const nc = await connect(natsOptions(config.nats, "test-upgrade"));
    const encrypted = nc.info?.tls_required;
    await nc.close();
    expect(encrypted).toBe(true);
  });
});
