import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { findNatsServerBinary } from "../../scripts/nats-server-binary.ts";

/** A private nats-server with JetStream for one test file: its own port and store directory. */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Its process (the benchmarks read its CPU time). */
  pid(): number | undefined;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** Starts it again on the same port and store. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** The nats-server binary: `NATS_SERVER_BIN`, else the one on PATH, else Debian's. */
export function natsServerBinary(): string {
  const found = findNatsServerBinary();
  if (!found) {
    throw new Error(
      "nats-server not found: install it (apt-get install nats-server) or set NATS_SERVER_BIN; the integration tests need a real server",
    );
  }
  return found;
}

export async function startNatsServer(extraArgs: readonly string[] = []): Promise<NatsServer> {
  const dir = await mkdtemp(join(tmpdir(), "nats-test-"));
  const storeDir = join(dir, "store");
  let port = 0;
  let child: ChildProcess;

  async function launch(): Promise<void> {
    const portsDir = await mkdtemp(join(dir, "ports-"));
    const args = [
      "-a",
      "127.0.0.1",
      "-p",
      port === 0 ? "-1" : String(port),
      "-js",
      "-sd",
      storeDir,
    ];
    child = spawn(natsServerBinary(), [...args, "--ports_file_dir", portsDir, ...extraArgs], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on(
      "data",
      (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)),
    );
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`nats-server exited at start:\n${stderr}`);
      const file = (await readdir(portsDir)).find((f) => f.endsWith(".ports"));
      if (file) {
        const ports = JSON.parse(await readFile(join(portsDir, file), "utf8")) as {
          nats: string[];
        };
        port = Number(new URL(ports.nats[0] ?? "").port);
        return;
      }
      await sleep(20);
    }
    child.kill("SIGKILL");
    throw new Error(`nats-server did not start within 10 s:\n${stderr}`);
  }

  async function terminate(signal: NodeJS.Signals): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    await exited;
  }

  await launch();
  return {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    storeDir,
    pid: () => child.pid,
    kill: () => terminate("SIGKILL"),
    restart: launch,
    async stop() {
      await terminate("SIGTERM");
      await rm(dir, { recursive: true, force: true });
    },
  };
}
