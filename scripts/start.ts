/**
 * `npm start`: the whole system on a laptop. Finds NATS (or launches a local nats-server),
 * ensures the streams and the consumer, then runs the worker and `netlify dev`, each one's lines
 * prefixed with its name. SIGINT (Ctrl-C) or SIGTERM stops everything it started, as does any
 * part dying; `npm start` execs this file, so a signal sent to npm's process reaches it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "nats";
import { findNatsServerBinary } from "./nats-server-binary.ts";
import { isPortFree } from "./port-free.ts";
import { prettyFactory } from "pino-pretty";
import { ConfigError, loadConfig, type Config } from "../shared/config.ts";
import {
  describeConnectError,
  jetStreamManagerOf,
  natsOptions,
  type ConnectFailure,
} from "../shared/nats-connection.ts";
import { StartupError } from "../shared/startup-error.ts";
import { ensureStreams } from "../shared/stream-setup.ts";
import { WORKER_NODE_ARGS } from "../worker/command.ts";

const NETLIFY_DEV_PORT = 8888;
const LOCAL_NATS_URL = "nats://127.0.0.1:4222";
const root = join(import.meta.dirname, "..");
const pretty = prettyFactory({ colorize: process.stdout.isTTY, ignore: "pid,hostname,service" });
const children = new Map<string, ChildProcess>();

function say(part: string, line: string): void {
  console.log(`[${part}] ${line}`);
}

/** A failure of the start itself; `main` stops whatever started and says it in one line. */
function fail(message: string): never {
  throw new StartupError(message);
}

/** Runs a part of the system as a child, prefixing each of its lines (pino's JSON made readable). */
function run(part: string, command: string, args: string[], env: Record<string, string>): void {
  const child = spawn(command, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  children.set(part, child);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      say(part, line.startsWith("{") ? pretty(line).trimEnd() : line);
    });
  }
  child.on("exit", (code, signal) => {
    children.delete(part);
    if (!stopping) {
      say("start", `${part} exited (${signal ?? `code ${code}`}); stopping everything`);
      void stopAll().then(() => process.exit(1));
    }
  });
}

/**
 * How long each part may take to stop before it is killed: more than the worker's own deadline
 * for finishing its batches and draining (worker/main.ts), so a stop never cuts a drain short.
 */
const STOP_DEADLINE_MS = 25_000;

let stopping = false;
/** Stops every part: the worker and netlify dev first, then NATS (the worker drains into it). */
async function stopAll(): Promise<void> {
  stopping = true;
  const nats = children.get("nats");
  await Promise.all([...children.entries()].filter(([part]) => part !== "nats").map(stopPart));
  if (nats) await stopPart(["nats", nats]);
}

function stopPart([part, child]: [string, ChildProcess]): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      resolve();
    }),
  );
  say("start", `stopping ${part}`);
  signalGroup(child, "SIGTERM");
  const force = setTimeout(() => {
    say("start", `${part} did not stop within ${STOP_DEADLINE_MS / 1000} s; killing it`);
    signalGroup(child, "SIGKILL");
  }, STOP_DEADLINE_MS);
  return exited.finally(() => {
    clearTimeout(force);
  });
}

/** The first SIGINT or SIGTERM stops every part, then exits 0; a second one kills them. */
function onStopSignals(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (stopping) {
        say("start", `${signal} again: killing everything`);
        for (const child of children.values()) signalGroup(child, "SIGKILL");
        process.exit(1);
      }
      say("start", `${signal}: stopping everything`);
      void stopAll().then(() => process.exit(0));
    });
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** A connection, or why there is none: nothing listening is not the same as a refusal. */
async function tryConnect(
  config: Config,
  servers: string[],
): Promise<NatsConnection | ConnectFailure> {
  const options = natsOptions({ ...config.nats, servers }, "metrics-start");
  try {
    return await connect({ ...options, maxReconnectAttempts: 0 });
  } catch (err) {
    return describeConnectError(err, options);
  }
}

function isFailure(value: NatsConnection | ConnectFailure): value is ConnectFailure {
  return "kind" in value;
}

/** NATS_URL when it is set; else a server on 127.0.0.1:4222; else one launched here. */
async function findNats(config: Config): Promise<{ url: string; nc: NatsConnection }> {
  if (process.env["NATS_URL"]) {
    const nc = await tryConnect(config, [...config.nats.servers]);
    if (isFailure(nc)) fail(nc.message);
    say("start", `NATS at ${config.nats.servers.join(",")} (NATS_URL)`);
    return { url: config.nats.servers.join(","), nc };
  }
  const local = await tryConnect(config, [LOCAL_NATS_URL]);
  // Something answered there but refused us: launching another server would not help.
  if (isFailure(local) && local.kind !== "unreachable") fail(local.message);
  if (!isFailure(local)) {
    say("start", `NATS found at ${LOCAL_NATS_URL}`);
    return { url: LOCAL_NATS_URL, nc: local };
  }
  const binary = findNatsServerBinary();
  if (!binary) {
    fail(
      [
        `no NATS at ${LOCAL_NATS_URL} and no nats-server binary on PATH. Get one of:`,
        "  - docker compose up -d nats            (the project's compose file)",
        "  - apt-get install nats-server          (Debian/Ubuntu; brew install nats-server on macOS)",
        "  - a release from https://github.com/nats-io/nats-server/releases, on PATH",
        "  - or point NATS_URL at a server you already run",
      ].join("\n"),
    );
  }
  const storeDir = join(root, ".data", "nats");
  mkdirSync(storeDir, { recursive: true });
  say("start", `launching ${binary} with JetStream, store in .data/nats`);
  run("nats", binary, ["-a", "127.0.0.1", "-p", "4222", "-js", "-sd", storeDir], {});
  for (let i = 0; i < 50; i++) {
    const nc = await tryConnect(config, [LOCAL_NATS_URL]);
    if (!isFailure(nc)) return { url: LOCAL_NATS_URL, nc };
    await sleep(100);
  }
  fail("the launched nats-server did not accept connections within 5 s");
}

async function assertPortFree(port: number): Promise<void> {
  if (!(await isPortFree(port))) {
    fail(
      `port ${port} is already in use (another netlify dev or npm start?): stop it, or start with npm start -- --port <another>`,
    );
  }
}

async function main(): Promise<void> {
  onStopSignals();
  const { port } = options();
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  await assertPortFree(port);
  const { url, nc } = await findNats(config);
  try {
    const jsm = await jetStreamManagerOf(nc, url);
    for (const change of await ensureStreams(jsm, config)) say("setup", change);
  } finally {
    await nc.close();
  }

  say("start", "starting the worker");
  run("worker", process.execPath, [...WORKER_NODE_ARGS], { NATS_URL: url });
  say("start", `starting netlify dev on http://localhost:${port}`);
  run("netlify", "netlify", ["dev", "--offline", "--port", String(port)], {
    NATS_URL: url,
  });
}

/** `npm start -- --port <n>`: netlify dev's port, 8888 unless told. */
function options(): { port: number } {
  const { values } = parseArgs({ options: { port: { type: "string" } } });
  const port = Number(values.port ?? NETLIFY_DEV_PORT);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    fail(`--port must be a port number, not ${values.port ?? ""}`);
  }
  return { port };
}

// A StartupError is the user's to fix: one line. Anything else is a bug and keeps its stack.
await main().catch(async (err: unknown) => {
  if (stopping) return;
  say("start", err instanceof StartupError ? `error: ${err.message}` : `bug: ${String(err)}`);
  if (!(err instanceof StartupError)) console.error(err);
  await stopAll();
  process.exit(1);
});
