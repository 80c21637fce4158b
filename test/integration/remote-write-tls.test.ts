import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeWriteRequest } from "../../edge/remote-write/remote-write.ts";
import { loadConfig } from "../../shared/config.ts";
import type { WriteRequest } from "../../shared/gen/proto/prometheus/remote_pb.js";
import type { MetricRow } from "../../worker/metric-rows.ts";
import { openRemoteWriteStore } from "../../worker/remote-write-store.ts";
import { makeTlsFiles, type TlsFiles } from "../helpers/nats-auth.ts";

/**
 * The remote-write store over TLS with a private CA (`REMOTE_WRITE_CA`), and what every request
 * carries: remote write 1.0's headers, the project's User-Agent and basic auth from the URL. The
 * receiver is a Node HTTPS server recording what it gets, since what is checked is the request.
 */
let dir: string;
let tls: TlsFiles;
let server: Server;
let port: number;
const received: { headers: IncomingHttpHeaders; request: WriteRequest }[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "rw-tls-"));
  tls = await makeTlsFiles(dir);
  server = createServer(
    { cert: await readFile(tls.certFile), key: await readFile(tls.keyFile) },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        received.push({
          headers: req.headers,
          request: decodeWriteRequest(Buffer.concat(chunks), 1 << 24),
        });
        res.writeHead(204).end();
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

const databaseOf = (ca: string | undefined) =>
  loadConfig({
    DATABASE_URL: `remote-write+https://writer:pa%3Ass@localhost:${port}/api/v1/write`,
    ...(ca === undefined ? {} : { REMOTE_WRITE_CA: ca }),
  }).database;

const row: MetricRow = {
  series: "s",
  name: "cpu",
  value: 1.5,
  timeMs: 1_764_750_000_000,
  receivedMs: 1_764_750_000_000,
  tags: '{"host":"a"}',
  attributes: null,
  extra: null,
  msgId: "m",
};

describe("remote write over TLS", () => {
  it("trusts the receiver's certificate through REMOTE_WRITE_CA and sends remote write 1.0's headers", async () => {
    const store = openRemoteWriteStore(databaseOf(tls.caPem));
    try {
      await store.ping();
      expect(await store.insert([row])).toBe(1);
    } finally {
      await store.close();
    }
    const last = received.at(-1);
    expect(last?.headers).toMatchObject({
      "content-type": "application/x-protobuf",
      "content-encoding": "snappy",
      "x-prometheus-remote-write-version": "0.1.0",
      authorization: `Basic ${Buffer.from("writer:pa:ss").toString("base64")}`,
    });
    expect(last?.headers["user-agent"]).toMatch(/^metrics-ingest-worker\/\d+\.\d+\.\d+$/);
    expect(
      last?.request.timeseries.map((s) => [
        s.labels.map((l) => `${l.name}=${l.value}`),
        s.samples.map((p) => [Number(p.timestamp), p.value]),
      ]),
    ).toEqual([[["__name__=cpu", "host=a"], [[row.timeMs, 1.5]]]]);
  });

  it("refuses a receiver whose certificate it cannot check", async () => {
    const store = openRemoteWriteStore(databaseOf(undefined));
    try {
      await expect(store.ping()).rejects.toThrow(/certificate/);
    } finally {
      await store.close();
    }
  });
});
