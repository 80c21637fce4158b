import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { WORKER_NODE_ARGS } from "../../worker/command.ts";

export const PROJECT_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** A child process of a test, with its combined output kept for assertions and failures. */
export interface Child {
  readonly process: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  readonly exited: Promise<number | string>;
  /** Sends `signal` and waits for the exit; SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | string>;
}

export function startChild(
  command: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
): Child {
  const child = spawn(command, args, {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group, so that stop() reaches its children too
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-200_000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      resolve(code ?? signal ?? "unknown");
    });
  });
  return {
    process: child,
    output: () => output,
    exited,
    async stop(signal = "SIGTERM", graceMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(-child.pid, signal);
        } catch {
          // already gone
        }
        const timer = setTimeout(() => {
          try {
            if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
          } catch {
            // already gone
          }
        }, graceMs);
        const code = await exited;
        clearTimeout(timer);
        return code;
      }
      return exited;
    },
  };
}

/** The worker as its own process, exactly as `npm run worker` starts it. */
export function startWorker(
  env: Readonly<Record<string, string>>,
  /** A command that execs the worker (`sh -c '…; exec "$@"' sh`), e.g. into a cgroup. */
  prefix: readonly string[] = [],
): Child {
  const [command, ...args] = [...prefix, process.execPath, ...WORKER_NODE_ARGS];
  // Test files run in parallel: each worker's HTTP port is one the system picks.
  return startChild(command ?? process.execPath, args, {
    LOG_LEVEL: "info",
    WORKER_HTTP_PORT: "0",
    ...env,
  });
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** The real `netlify dev`, offline, serving this project's functions on `port`. */
export function startNetlifyDev(port: number, env: Readonly<Record<string, string>>): Child {
  const netlify = `${PROJECT_ROOT}node_modules/.bin/netlify`;
  return startChild(netlify, ["dev", "--offline", "--port", String(port)], {
    BROWSER: "none",
    ...env,
  });
}

/** The port a worker's HTTP listener took, read from its log (start it with WORKER_HTTP_PORT=0). */
export function workerHttpPort(worker: Child): number | undefined {
  for (const line of worker.output().split("\n")) {
    if (!line.includes("http listening")) continue;
    const { port } = JSON.parse(line) as { port?: number };
    if (port !== undefined) return port;
  }
  return undefined;
}

/** The value of one sample of a worker's /metrics, 0 when absent (a counter never incremented). */
export async function workerMetric(port: number, sample: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}
