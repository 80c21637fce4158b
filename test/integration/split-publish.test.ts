import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../shared/config.ts";
import { decodeEnvelope } from "../../shared/envelope.ts";
import { ensureStreams } from "../../shared/stream-setup.ts";
import { errorCodeOf } from "../helpers/error-code.ts";
import { isolated } from "../helpers/isolated.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { PATHS, telegrafBatch, type Payload } from "../helpers/payloads.ts";
import { startWorker, type Child } from "../helpers/processes.ts";
import { startServe, type ServeProcess } from "../helpers/serve.ts";
import { readRows } from "../helpers/sqlite.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * A batch too large for one NATS message is published as several; when only some of them are
 * stored, the request fails (503) and the agent's retry of the same request stores what was
 * missing and nothing twice. Real processes throughout: `npm run serve`, a private nats-server
 * whose stream is small enough that the first attempt fills it part-way, and the worker
 * storing into SQLite.
 */
const KEY = "split-publish-test-key";
/**
 * The broker's `max_payload`: small enough that the batch (9,918 points, ~340 KB as envelope
 * version 4, which fits 10,000 points of most batches in the default 1 MiB) is two messages.
 */
const MAX_PAYLOAD = 256 * 1024;
/** Room for the first of the batch's two messages (near 256 KiB), not for the second as well. */
const STREAM_MAX_BYTES = 300_000;

let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dir: string;
let config: Config;
let env: Record<string, string>;
let dbPath: string;
let serve: ServeProcess;
let worker: Child | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "split-publish-test-"));
  const conf = join(dir, "nats.conf");
  await writeFile(conf, `max_payload: ${MAX_PAYLOAD}\n`);
  nats = await startNatsServer(["-c", conf]);
  nc = await connect({ servers: nats.url });
  jsm = await nc.jetstreamManager();
  ({ config, env, dbPath } = isolated(nats.url, "split", dir, {
    INGEST_API_KEYS: KEY,
    STREAM_MAX_BYTES: String(STREAM_MAX_BYTES),
  }));
  await ensureStreams(jsm, config);
  serve = await startServe(env);
});

afterAll(async () => {
  await worker?.stop();
  await serve.child.stop();
  await nc.close();
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
});

function write(payload: Payload): Promise<{ status: number; code: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${serve.base}${PATHS.influx}`,
      {
        method: "POST",
        headers: {
          ...payload.headers,
          authorization: `Token ${KEY}`,
          "content-length": String(payload.body.byteLength),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          const body = Buffer.concat(chunks);
          const code =
            status >= 400 ? errorCodeOf(res.headers["content-type"] ?? null, body) : undefined;
          resolve({ status, code });
        });
      },
    );
    req.on("error", reject);
    req.end(payload.body);
  });
}

interface Accepted {
  readonly messages: number;
  readonly duplicates: number;
}

/** The server's "accepted" log lines, in order: how many messages, and how many JetStream held. */
function acceptedLines(): Accepted[] {
  return serve.child
    .output()
    .split("\n")
    .filter((line) => line.includes('"msg":"accepted"'))
    .map((line) => JSON.parse(line) as Accepted);
}

/** The `count`th "accepted" line, once the server's log has it. */
function accepted(count: number): Promise<Accepted> {
  return waitFor(`accepted line ${count}`, () => acceptedLines()[count - 1]);
}

async function streamState() {
  return (await jsm.streams.info(config.stream.name)).state;
}

describe("a batch published as several messages", () => {
  it("fails when only part of it is stored, and its retry stores the rest and nothing twice", async () => {
    const batch = telegrafBatch(58);
    const seen = new Set<string>();

    // The first attempt: some of the batch's messages are stored, one does not fit the stream.
    const first = await write(batch);
    expect([first.status, first.code]).toEqual([503, "stream_full"]);
    const afterFirst = await streamState();
    let firstPart = 0;
    for (let seq = afterFirst.first_seq; seq <= afterFirst.last_seq; seq++) {
      const stored = decodeEnvelope(
        (await jsm.streams.getMessage(config.stream.name, { seq })).data,
      );
      if (!stored.ok) throw new Error(stored.message);
      firstPart += stored.envelope.metrics.length;
    }
    expect(afterFirst.messages).toBeGreaterThan(0);
    expect(firstPart).toBeGreaterThan(0);
    expect(firstPart).toBeLessThan(batch.points);

    // The worker stores what was published, and the stream has room again.
    worker = startWorker(env);
    await waitFor(
      "the first part's rows",
      async () =>
        readRows(dbPath).length === firstPart && (await streamState()).messages === 0
          ? true
          : undefined,
      60_000,
    );

    // The agent sends the same request again: the same messages, those stored are duplicates.
    const second = await write(batch);
    expect(second.status).toBe(204);
    const { messages, duplicates } = await accepted(1);
    expect(messages).toBeGreaterThan(afterFirst.messages);
    expect(duplicates).toBe(afterFirst.messages);
    const rows = await waitFor(
      "every point's row",
      () => {
        const all = readRows(dbPath);
        return all.length >= batch.points ? all : undefined;
      },
      60_000,
    );
    expect(rows).toHaveLength(batch.points);
    for (const row of rows) {
      const identity = `${row.name ?? ""} ${row.tags} ${row.time_ms}`;
      expect(seen.has(identity), identity).toBe(false);
      seen.add(identity);
    }

    // Once more: everything is a duplicate, and no row is added.
    const third = await write(batch);
    expect(third.status).toBe(204);
    expect(await accepted(2)).toMatchObject({ messages, duplicates: messages });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(readRows(dbPath)).toHaveLength(batch.points);
  }, 120_000);
});
