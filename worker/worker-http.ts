import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "../shared/logger.ts";

/** One condition of readiness: resolves when it holds, rejects (with a short reason) when not. */
export interface ReadinessCheck {
  readonly name: string;
  readonly check: () => Promise<void>;
}

export interface WorkerHttp {
  readonly port: number;
  close(): Promise<void>;
}

const CHECK_TIMEOUT_MS = 2000;

/**
 * The worker's operations endpoints: `/healthz` (the process is alive), `/readyz` (every
 * readiness check passes, each within 2 s) and `/metrics` (Prometheus text format). They ask for
 * no credentials, so they listen on `host` only: loopback unless `WORKER_HTTP_HOST` says
 * otherwise (a container's, for probes and scrapes from its network).
 */
export async function startWorkerHttp(options: {
  host: string;
  port: number;
  registry: Registry;
  checks: readonly ReadinessCheck[];
  logger: Logger;
}): Promise<WorkerHttp> {
  const server: Server = createServer((req, res) => {
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    const json = (status: number, body: unknown) => {
      reply(status, "application/json; charset=utf-8", JSON.stringify(body));
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      json(405, { status: "error" });
      return;
    }
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      json(200, { status: "ok" });
    } else if (path === "/readyz") {
      void readiness(options.checks).then(({ ready, checks }) => {
        json(ready ? 200 : 503, { status: ready ? "ok" : "error", checks });
      });
    } else if (path === "/metrics") {
      options.registry.metrics().then(
        (text) => {
          reply(200, options.registry.contentType, text);
        },
        (err: unknown) => {
          options.logger.error({ err }, "metrics collection failed");
          json(500, { status: "error" });
        },
      );
    } else {
      json(404, { status: "error" });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: options.host, port: options.port }, () => {
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  options.logger.info({ host: address, port }, "http listening (/healthz, /readyz, /metrics)");
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

async function readiness(checks: readonly ReadinessCheck[]) {
  const results = await Promise.all(
    checks.map(async ({ name, check }) => {
      try {
        await withTimeout(check(), CHECK_TIMEOUT_MS);
        return [name, "ok"] as const;
      } catch (err) {
        return [name, `down: ${err instanceof Error ? err.message : String(err)}`] as const;
      }
    }),
  );
  return {
    ready: results.every(([, state]) => state === "ok"),
    checks: Object.fromEntries(results),
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`no answer within ${ms} ms`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
  });
}
