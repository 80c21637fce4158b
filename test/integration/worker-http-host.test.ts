import { mkdtemp, readFile, rm } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { startWorker, workerHttpPort, type Child } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * The worker's /healthz, /readyz and /metrics ask for no credentials, so by default they listen
 * on loopback only. Checked on the worker process itself: what its socket is bound to, and
 * that another address of this machine (127.0.0.2, still loopback, so no traffic leaves it)
 * finds nothing there, while WORKER_HTTP_HOST=0.0.0.0 is reachable on it.
 */
let nats: NatsServer;
let dir: string;
const workers: Child[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  dir = await mkdtemp(join(tmpdir(), "worker-http-host-"));
});

afterAll(async () => {
  for (const worker of workers) await worker.stop();
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
});

async function startWith(env: Record<string, string>, name: string) {
  const worker = startWorker({
    NATS_URL: nats.url,
    DATABASE_URL: `sqlite:${join(dir, `${name}.db`)}`,
    ...env,
  });
  workers.push(worker);
  const port = await waitFor("the worker's http listening line", () => {
    if (worker.process.exitCode !== null) throw new Error(`the worker exited:\n${worker.output()}`);
    return workerHttpPort(worker);
  });
  const line = worker
    .output()
    .split("\n")
    .find((l) => l.includes("http listening"));
  const { host } = JSON.parse(line ?? "{}") as { host?: string };
  return { port, host };
}

/** The local addresses of the sockets listening on `port`, from the kernel's own tables. */
async function listeningAddresses(port: number): Promise<string[]> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const addresses: string[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const rows = (await readFile(table, "utf8")).split("\n").slice(1);
    for (const row of rows) {
      const [, local = "", , state] = row.trim().split(/\s+/);
      // State 0A is LISTEN.
      if (state === "0A" && local.endsWith(`:${hexPort}`))
        addresses.push(local.split(":")[0] ?? "");
    }
  }
  return addresses;
}

/** "open" when something accepts a TCP connection at host:port, else the error's code. */
function probe(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port }, () => {
      socket.destroy();
      resolve("open");
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      resolve(err.code ?? "error");
    });
  });
}

describe("the worker's HTTP port", () => {
  it("listens on 127.0.0.1 only by default", async () => {
    const { port, host } = await startWith({}, "default");
    expect(host).toBe("127.0.0.1");
    // 0100007F is 127.0.0.1 in the kernel's byte order; 00000000 would be every interface.
    expect(await listeningAddresses(port)).toEqual(["0100007F"]);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect(await probe("127.0.0.2", port)).toBe("ECONNREFUSED");
  });

  it("listens where WORKER_HTTP_HOST says: 0.0.0.0 in a container", async () => {
    const { port, host } = await startWith({ WORKER_HTTP_HOST: "0.0.0.0" }, "container");
    expect(host).toBe("0.0.0.0");
    expect(await listeningAddresses(port)).toEqual(["00000000"]);
    expect(await probe("127.0.0.2", port)).toBe("open");
  });
});
