import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config.ts";
import { ConfigEnv } from "../../shared/config-schema.ts";
import { ERRORS } from "../../shared/errors.ts";

/** The README and .env.example document the catalogue and the configuration; they must agree. */
const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
const envExample = readFileSync(new URL("../../.env.example", import.meta.url), "utf8");

/** The rows of the README table that follows `heading`, as arrays of trimmed cells. */
function tableAfter(heading: string): string[][] {
  const start = readme.indexOf(heading);
  expect(start, `README has a "${heading}" section`).toBeGreaterThanOrEqual(0);
  const lines = readme.slice(start).split("\n");
  const first = lines.findIndex((l) => l.startsWith("|"));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(
      line
        .split("|")
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  }
  return rows;
}

describe("the README's error table", () => {
  const rows = tableAfter("#### Error codes");

  it("lists every code of the catalogue with its status, and no other", () => {
    const documented: Record<string, number> = Object.fromEntries(
      rows.map(([code, status]) => [code?.replaceAll("`", "") ?? "", Number(status)]),
    );
    const catalogue = Object.fromEntries(
      Object.entries(ERRORS).map(([code, spec]) => [code, spec.status]),
    );
    expect(documented).toEqual(catalogue);
  });

  it("gives each code's Retry-After seconds as the catalogue does", () => {
    for (const [code, , when] of rows) {
      const spec: { status: number; retryAfter?: number } =
        ERRORS[code?.replaceAll("`", "") as keyof typeof ERRORS];
      const documented = /Retry-After: (\d+)/.exec(when ?? "")?.[1];
      expect(documented === undefined ? undefined : Number(documented), String(code)).toBe(
        spec.retryAfter,
      );
    }
  });
});

describe("the README's configuration table", () => {
  const rows = tableAfter("## Configuration");
  const variables = rows.flatMap(([names]) =>
    [...(names ?? "").matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]),
  );

  it("documents every variable the configuration schema reads, and no other", () => {
    expect(new Set(variables)).toEqual(new Set(Object.keys(ConfigEnv.properties)));
  });

  it("gives the defaults loadConfig applies", () => {
    const config = loadConfig({});
    const defaults: Record<string, string | undefined> = Object.fromEntries(
      rows.map(([names, value]) => [
        /`([A-Z_]+)`/.exec(names ?? "")?.[1] ?? "",
        /^`([^`]*)`/.exec(value ?? "")?.[1],
      ]),
    );
    expect(defaults["NATS_URL"]).toBe(config.nats.servers.join(","));
    expect(defaults["NATS_STREAM"]).toBe(config.stream.name);
    expect(defaults["NATS_CONSUMER"]).toBe(config.consumer.name);
    expect(defaults["NATS_DLQ_STREAM"]).toBe(config.stream.dlqName);
    expect(Number(defaults["PUBLISH_TIMEOUT_MS"])).toBe(config.nats.publishTimeoutMs);
    expect(Number(defaults["STREAM_MAX_BYTES"])).toBe(config.stream.maxBytes);
    expect(Number(defaults["STREAM_MAX_AGE_SECONDS"])).toBe(config.stream.maxAgeSeconds);
    expect(Number(defaults["STREAM_DUPLICATE_WINDOW_SECONDS"])).toBe(
      config.stream.duplicateWindowSeconds,
    );
    expect(Number(defaults["CONSUMER_MAX_ACK_PENDING"])).toBe(config.consumer.maxAckPending);
    expect(Number(defaults["CONSUMER_MAX_DELIVER"])).toBe(config.consumer.maxDeliver);
    expect(Number(defaults["CONSUMER_ACK_WAIT_SECONDS"])).toBe(config.consumer.ackWaitSeconds);
    expect(Number(defaults["WORKER_BATCH_SIZE"])).toBe(config.worker.batchSize);
    expect(Number(defaults["WORKER_HTTP_PORT"])).toBe(config.worker.httpPort);
    expect(Number(defaults["PORT"])).toBe(config.ingest.port);
    expect(defaults["DATABASE_URL"]).toBe(config.database.url);
    expect(defaults["LOG_LEVEL"]).toBe(config.logLevel);
  });
});

describe(".env.example", () => {
  const assignments = Object.fromEntries(
    envExample
      .split("\n")
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );

  it("lists every variable of the configuration schema", () => {
    expect(new Set(Object.keys(assignments))).toEqual(new Set(Object.keys(ConfigEnv.properties)));
  });

  it("is a valid configuration as it stands", () => {
    expect(() => loadConfig(assignments)).not.toThrow();
  });
});
