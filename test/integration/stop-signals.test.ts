import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isPortFree } from "../../scripts/port-free.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { freePort, startChild, type Child } from "../helpers/processes.ts";
import { alive, descendants } from "../helpers/process-tree.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * Process managers (systemd, Docker, Kubernetes, CI) send SIGTERM to the process they started,
 * and a terminal sends SIGINT: here that process is npm itself. Each command must then stop
 * completely within its drain time — every process it started gone, every port it held free —
 * and exit 0.
 */
let nats: NatsServer;
let dir: string;

beforeAll(async () => {
  nats = await startNatsServer();
  dir = await mkdtemp(join(tmpdir(), "stop-signals-"));
});

afterAll(async () => {
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
});

async function answers(url: string): Promise<true | undefined> {
  const res = await fetch(url).catch(() => undefined);
  return res?.ok === true ? true : undefined;
}

interface Started {
  npm: Child;
  ports: number[];
  readyUrl: string;
}

/** `npm run <script>` on a private NATS and SQLite file, with its ports chosen here. */
async function npmRun(script: "start" | "serve" | "worker", processes: number): Promise<Started> {
  const workerPort = await freePort();
  const port = await freePort();
  const env = {
    NATS_URL: nats.url,
    DATABASE_URL: `sqlite:${join(dir, `${script}-${port}.db`)}`,
    WORKER_HTTP_PORT: String(workerPort),
    PORT: String(port),
    BROWSER: "none",
    SERVE_PROCESSES: String(processes),
  };
  const args = script === "start" ? ["start", "--", "--port", String(port)] : ["run", script];
  const npm = startChild("npm", args, env);
  const ports =
    script === "serve" ? [port] : script === "worker" ? [workerPort] : [port, workerPort];
  const readyUrl =
    script === "worker"
      ? `http://127.0.0.1:${workerPort}/readyz`
      : script === "serve"
        ? `http://127.0.0.1:${port}/api/v1/health`
        : `http://localhost:${port}/api/v1/health`;
  return { npm, ports, readyUrl };
}

const cases = [
  { script: "worker", signal: "SIGTERM", readyMs: 20_000, processes: 1 },
  { script: "worker", signal: "SIGINT", readyMs: 20_000, processes: 1 },
  { script: "serve", signal: "SIGTERM", readyMs: 20_000, processes: 1 },
  { script: "serve", signal: "SIGINT", readyMs: 20_000, processes: 1 },
  // Its primary stops the server processes; none of them may be left behind.
  { script: "serve", signal: "SIGTERM", readyMs: 20_000, processes: 2 },
  { script: "serve", signal: "SIGINT", readyMs: 20_000, processes: 2 },
  { script: "start", signal: "SIGTERM", readyMs: 110_000, processes: 1 },
  { script: "start", signal: "SIGINT", readyMs: 110_000, processes: 1 },
] as const;

describe("a stop signal sent to npm's own process", () => {
  it.each(cases)(
    "npm $script (SERVE_PROCESSES=$processes) stops completely on $signal",
    async ({ script, signal, readyMs, processes }) => {
      const { npm, ports, readyUrl } = await npmRun(script, processes);
      try {
        await waitFor(
          `npm ${script} to answer`,
          () => {
            if (npm.process.exitCode !== null) throw new Error(`exited early:\n${npm.output()}`);
            return answers(readyUrl);
          },
          readyMs,
        ).catch((err: unknown) => {
          throw new Error(`${String(err)}\n--- output ---\n${npm.output()}`);
        });
        const pid = npm.process.pid ?? 0;
        const started = descendants(pid);
        expect(started.length, "npm runs its script as a child").toBeGreaterThan(0);
        if (script === "serve") {
          // One process, or a primary and its server processes.
          const servers = started.filter((p) =>
            readFileSync(`/proc/${p}/cmdline`, "utf8").includes("server/main.ts"),
          );
          expect(servers).toHaveLength(processes === 1 ? 1 : processes + 1);
        }

        process.kill(pid, signal); // npm's process only, as a process manager does
        const code = await Promise.race([
          npm.exited,
          new Promise<string>((resolve) => setTimeout(resolve, 30_000, "not stopped in 30 s")),
        ]);
        expect(code, npm.output()).toBe(0);
        await waitFor("every process it started to end", () =>
          started.every((p) => !alive(p)) ? true : undefined,
        ).catch(() => {
          const left = started.filter(alive);
          throw new Error(
            `still running: ${left.map((p) => readFileSync(`/proc/${p}/cmdline`, "utf8")).join("; ")}`,
          );
        });
        for (const port of ports) expect(await isPortFree(port), `port ${port}`).toBe(true);
      } finally {
        await npm.stop("SIGKILL");
      }
    },
    150_000,
  );
});
