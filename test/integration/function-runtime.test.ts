import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netlifyFunction } from "../../edge/http/function-runtime.ts";
import type { ServiceContext } from "../../edge/http/service-context.ts";
import { ingestHandlerOf } from "../../edge/json/ingest-handler.ts";
import { ensureStreams } from "../../shared/stream-setup.ts";
import { isolated } from "../helpers/isolated.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { freePort } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";
import { post } from "../helpers/requests.ts";

/**
 * The Netlify function's wrapper over a real nats-server: a warm instance keeps its context and
 * its one NATS connection, and opens a new connection once that one is closed. The server's
 * monitoring port shows the connections as the server sees them.
 */
let server: NatsServer;
let monitorPort: number;
let dir: string;

beforeAll(async () => {
  monitorPort = await freePort();
  server = await startNatsServer(["-m", String(monitorPort)]);
  dir = await mkdtemp(join(tmpdir(), "function-runtime-"));
});

afterAll(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The ids of the open client connections the function made (named as it names them). */
async function functionConnections(): Promise<number[]> {
  const res = await fetch(`http://127.0.0.1:${String(monitorPort)}/connz?limit=1000`);
  const { connections = [] } = (await res.json()) as {
    connections?: { cid: number; name?: string }[];
  };
  return connections.filter((c) => c.name === "metrics-ingest").map((c) => c.cid);
}

describe("a warm Netlify function", () => {
  it("keeps one context and one connection, and connects again once it was closed", async () => {
    const { config, env } = isolated(server.url, "fnrt", dir, {
      INGEST_AUTH: "none",
      LOG_LEVEL: "silent",
    });
    const nc = await connect({ servers: server.url });
    await ensureStreams(await nc.jetstreamManager(), config);
    await nc.close();

    const contexts: ServiceContext[] = [];
    const fn = netlifyFunction((context) => {
      contexts.push(context);
      return ingestHandlerOf(context);
    }, env);
    try {
      expect((await fn(post('{"data": {"value": 1}}'))).status).toBe(202);
      expect((await fn(post('{"data": {"value": 2}}'))).status).toBe(202);
      expect(contexts).toHaveLength(1);
      const [first] = await waitFor("the function's one connection", async () => {
        const open = await functionConnections();
        return open.length === 1 ? open : undefined;
      });

      // The connection closes under the warm instance (as after the server gave up on it).
      const context = contexts[0] as ServiceContext;
      await (await context.connections.get()).close();
      await waitFor("the connection to close", async () =>
        (await functionConnections()).length === 0 ? true : undefined,
      );

      expect((await fn(post('{"data": {"value": 3}}'))).status).toBe(202);
      expect(contexts).toHaveLength(1);
      const reopened = await waitFor("a new connection", async () => {
        const open = await functionConnections();
        return open.length === 1 ? open : undefined;
      });
      expect(reopened[0]).not.toBe(first);
    } finally {
      await Promise.all(contexts.map((c) => c.close()));
    }
  });
});
