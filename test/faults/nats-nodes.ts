import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "nats";
import { freePort, PROJECT_ROOT } from "../helpers/processes.ts";

/**
 * nats-server processes for the fault suite, each from a config file of its own so that the
 * JetStream settings under test (`sync_interval`) can be set: one node, or a 3-node cluster on
 * loopback. Every node can be SIGKILLed, SIGSTOPped and restarted on the same port and store.
 */

/** `always`: fsync every write before the PubAck; `default`: the server's own (every 2 min). */
export type SyncSetting = "always" | "default";

export interface NatsNode {
  readonly name: string;
  /** The address it listens on (127.0.0.1, or its own on a private network). */
  readonly host: string;
  readonly port: number;
  /** Its monitoring port: `/jsz` tells this node's own view of each stream replica. */
  readonly monitorPort: number;
  readonly url: string;
  readonly running: boolean;
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a server that hangs without closing its connections. */
  pause(): void;
  resume(): void;
  restart(): Promise<void>;
  /** The tail of its log, for a failure message. */
  output(): string;
  /** Its whole log since it first started (up to 20 MB), restarts included, for the evidence. */
  fullOutput(): string;
}

export interface NatsSetup {
  readonly nodes: readonly NatsNode[];
  /** Every node's client URL, comma-separated, as NATS_URL takes them. */
  readonly urls: string;
  readonly binary: string;
  readonly version: string;
  readonly sync: SyncSetting;
  /** The JetStream block of every node's config file, for the report. */
  readonly settings: string;
  stop(): Promise<void>;
}

/** nats-server 2.10+ for the suite: FAULTS_NATS_SERVER_BIN, else scripts/get-nats-server.sh's. */
export function faultsNatsBinary(): string {
  const bin =
    process.env["FAULTS_NATS_SERVER_BIN"] ?? join(PROJECT_ROOT, ".tools/nats-server/nats-server");
  if (!existsSync(bin)) {
    throw new Error(
      `${bin} is missing: npm run test:tools fetches nats-server 2.10 from Debian's mirror (or set FAULTS_NATS_SERVER_BIN to a nats-server 2.10+); Debian 12's 2.9.10 cannot fsync each write`,
    );
  }
  return bin;
}

export function natsVersion(binary: string): string {
  return execFileSync(binary, ["--version"], { encoding: "utf8" }).trim().replace(/^.*v/, "");
}

export interface StartOptions {
  nodes: 1 | 3;
  sync: SyncSetting;
  /** The nats-server to run (default: `faultsNatsBinary()`); `always` needs 2.10+. */
  binary?: string;
  /** More lines of each node's `jetstream {}` block (`max_file_store: 4G`…). */
  jetstream?: string;
  /** The folder under which each node keeps its store (`<storeDir>/n1`…), a small disk, say. */
  storeDir?: string;
  /** Node i listens on `hosts[i]` (default 127.0.0.1) and runs under `exec(i)` (a command prefix). */
  network?: { hosts: readonly string[]; exec: (i: number) => string[] };
}

/**
 * Starts the nodes, trying afresh (new ports, new stores) up to five times, a second apart: a
 * port can be taken between choosing it and binding it, and three clustered nodes started
 * together sometimes form a JetStream meta group of two that never takes in the third (2.10.27,
 * 4 starts of 58 here; once, with the whole integration suite running beside it, three starts in
 * a row): every R3 stream is then refused "no suitable peers for placement". nats-server shrinks
 * the expected group on a cold boot when it sees a routed server that has not yet said it runs
 * JetStream ("Adjusting JetStream expected peer set size"), which a loaded machine makes likelier;
 * the failure quotes those lines of the nodes' logs.
 */
export async function startNats(options: StartOptions): Promise<NatsSetup> {
  const failures: string[] = [];
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    if (attempt > 1) await sleep(1000);
    try {
      return await startOnce(options);
    } catch (err) {
      failures.push(`attempt ${attempt}: ${String(err)}`);
    }
  }
  throw new Error(`the nats-server nodes did not start:\n${failures.join("\n")}`);
}

const START_ATTEMPTS = 5;

async function startOnce(options: StartOptions): Promise<NatsSetup> {
  const binary = options.binary ?? faultsNatsBinary();
  const dir = await mkdtemp(join(tmpdir(), "faults-nats-"));
  // One draw for every port, so that no two of them are the same.
  const ports = await distinctPorts(options.nodes * (options.nodes > 1 ? 3 : 2));
  const port = (kind: number, i: number) => ports[kind * options.nodes + i] ?? 0;
  const host = (i: number) => options.network?.hosts[i] ?? "127.0.0.1";
  const routes =
    options.nodes > 1
      ? Array.from({ length: options.nodes }, (_, i) => `nats-route://${host(i)}:${port(2, i)}`)
      : [];
  const jetstreamExtra =
    (options.sync === "always" ? "  sync_interval: always\n" : "") +
    (options.jetstream === undefined ? "" : `  ${options.jetstream}\n`);
  const nodes: Node[] = [];
  const stores: string[] = [];
  const removeStores = async () => {
    for (const store of stores) await rm(store, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < options.nodes; i++) {
    const name = `n${i + 1}`;
    const store = join(options.storeDir ?? dir, name);
    stores.push(store);
    await mkdir(store, { recursive: true });
    const cluster =
      routes.length === 0
        ? ""
        : `cluster {\n  name: c1\n  listen: ${host(i)}:${port(2, i)}\n  routes: [${routes.join(", ")}]\n}\n`;
    const conf = join(dir, `${name}.conf`);
    await writeFile(
      conf,
      `server_name: ${name}\nlisten: ${host(i)}:${port(0, i)}\n` +
        `http: ${host(i)}:${port(1, i)}\n` +
        `jetstream {\n  store_dir: "${store}"\n${jetstreamExtra}}\n${cluster}`,
    );
    const prefix = options.network?.exec(i) ?? [];
    nodes.push(new Node([...prefix, binary], name, host(i), port(0, i), port(1, i), conf));
  }
  try {
    await Promise.all(nodes.map((n) => n.restart()));
    await waitForJetStream(nodes.map((n) => n.url).join(","));
    if (nodes.length > 1) await waitForMetaGroup(nodes);
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill()));
    await removeStores();
    throw err;
  }
  return {
    nodes,
    urls: nodes.map((n) => n.url).join(","),
    binary,
    version: natsVersion(binary),
    sync: options.sync,
    settings:
      (options.sync === "always"
        ? "jetstream { sync_interval: always }"
        : "jetstream {} (sync_interval: default, 2 min)") +
      (options.jetstream === undefined ? "" : `, ${options.jetstream}`),
    async stop() {
      await Promise.all(nodes.map((n) => n.terminate()));
      await removeStores();
    },
  };
}

/** Until the JetStream meta group counts every node, as each node's `/jsz` reports it. */
async function waitForMetaGroup(nodes: readonly NatsNode[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let sizes: string[] = [];
  while (Date.now() < deadline) {
    sizes = await Promise.all(
      nodes.map(async (n) => {
        const res = await fetch(`http://${n.host}:${n.monitorPort}/jsz`).catch(() => undefined);
        const jsz = (await res?.json().catch(() => undefined)) as
          { meta_cluster?: { cluster_size?: number } } | undefined;
        return `${n.name}: ${String(jsz?.meta_cluster?.cluster_size)}`;
      }),
    );
    if (sizes.every((s) => s.endsWith(`: ${nodes.length}`))) return;
    await sleep(200);
  }
  const adjusted = nodes.flatMap((n) =>
    n
      .output()
      .split("\n")
      .filter((line) => line.includes("Adjusting JetStream expected peer set size"))
      .map((line) => `${n.name}: ${line.trim()}`),
  );
  throw new Error(
    `the JetStream meta group did not take in every node (${sizes.join(", ")})` +
      (adjusted.length > 0 ? `; ${adjusted.join("; ")}` : ""),
  );
}

/** Until JetStream answers an account info request (a cluster: once a meta leader exists). */
export async function waitForJetStream(urls: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const nc = await connect({ servers: urls.split(","), timeout: 1000 });
      try {
        const jsm = await nc.jetstreamManager({ timeout: 1000 });
        await jsm.getAccountInfo();
        return;
      } finally {
        await nc.close();
      }
    } catch (err) {
      last = err;
      await sleep(200);
    }
  }
  throw new Error(`JetStream at ${urls} did not become ready: ${String(last)}`);
}

async function distinctPorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let i = 0; ports.size < n && i < 50; i++) ports.add(await freePort());
  return [...ports];
}

class Node implements NatsNode {
  private child: ChildProcess | undefined;
  private log = "";
  private readonly full: string[] = [];
  private fullBytes = 0;
  /** This run's output only, to see its own "Server is ready". */
  private runLog = "";
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly monitorPort: number;
  /** The command: nats-server's path, after any prefix (`ip netns exec …`). */
  private readonly command: readonly string[];
  private readonly conf: string;

  constructor(
    command: readonly string[],
    name: string,
    host: string,
    port: number,
    monitorPort: number,
    conf: string,
  ) {
    this.command = command;
    this.name = name;
    this.host = host;
    this.port = port;
    this.monitorPort = monitorPort;
    this.conf = conf;
  }

  get url(): string {
    return `nats://${this.host}:${this.port}`;
  }

  get running(): boolean {
    return this.alive();
  }

  /** A method, not the getter: TypeScript would narrow the getter's value across awaits. */
  private alive(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  output(): string {
    return this.log;
  }

  fullOutput(): string {
    return this.full.join("");
  }

  async restart(): Promise<void> {
    if (this.running) return;
    const [bin, ...args] = this.command;
    const child = spawn(bin ?? "nats-server", [...args, "-c", this.conf], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.child = child;
    this.runLog = "";
    this.note(`--- started ${new Date().toISOString()} ---\n`);
    child.stderr.on("data", (chunk: Buffer) => {
      this.note(chunk.toString());
      this.log = (this.log + chunk.toString()).slice(-20_000);
      if (this.runLog.length < 100_000) this.runLog += chunk.toString();
    });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (!this.alive()) throw new Error(`nats-server ${this.name} exited at start:\n${this.log}`);
      if (this.runLog.includes("Server is ready")) return;
      await sleep(50);
    }
    throw new Error(`nats-server ${this.name} did not start within 15 s:\n${this.log}`);
  }

  async kill(): Promise<void> {
    this.note(`--- SIGKILL ${new Date().toISOString()} ---\n`);
    await this.signal("SIGKILL");
  }

  private note(text: string): void {
    if (this.fullBytes > 20_000_000) return;
    this.full.push(text);
    this.fullBytes += text.length;
  }

  async terminate(): Promise<void> {
    this.resume();
    await this.signal("SIGTERM");
  }

  /**
   * Returns once the process is stopped (state `T` in /proc): a signal is delivered when the
   * kernel next schedules it, and on a busy machine a server could otherwise still answer a
   * request sent right after the kill.
   */
  pause(): void {
    const pid = this.child?.pid;
    if (!this.running || pid === undefined) return;
    this.child?.kill("SIGSTOP");
    const until = Date.now() + 5000;
    for (let state = processState(pid); state !== "T" && state !== undefined;) {
      if (Date.now() > until) throw new Error(`nats-server ${this.name} did not stop on SIGSTOP`);
      Atomics.wait(PAUSE_WAIT, 0, 0, 5);
      state = processState(pid);
    }
  }

  resume(): void {
    if (this.running) this.child?.kill("SIGCONT");
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

const PAUSE_WAIT = new Int32Array(new SharedArrayBuffer(4));

/** A process's state letter from /proc/<pid>/stat (`T`: stopped), or undefined once it is gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}
