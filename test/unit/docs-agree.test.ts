import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config.ts";
import { ConfigEnv } from "../../shared/config-schema.ts";
import { ERRORS } from "../../edge/http/errors.ts";

/**
 * docs/ and .env.example document the error catalogue and the configuration; they must agree with
 * the code, and each table must be where the docs put it.
 */
const apiDoc = readDoc("docs/api.md");
const configurationDoc = readDoc("docs/configuration.md");
const agentProtocolsDoc = readDoc("docs/agent-protocols.md");
const envExample = readDoc(".env.example");

function readDoc(path: string): string {
  return readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");
}

/**
 * The rows of each table in the section `heading` opens (up to the next heading of any level),
 * as arrays of trimmed cells, one array per table.
 */
function tablesUnder(doc: string, heading: string, within?: string): string[][][] {
  const lines = doc.split("\n");
  const from = within === undefined ? 0 : lines.indexOf(within);
  expect(from, `the docs have a "${within ?? ""}" section`).toBeGreaterThanOrEqual(0);
  const start = lines.indexOf(heading, from);
  expect(start, `the docs have a "${heading}" section`).toBeGreaterThanOrEqual(0);
  const section = lines.slice(start + 1);
  const end = section.findIndex((l) => l.startsWith("#"));
  const tables: string[][][] = [];
  let rows: string[][] | undefined;
  for (const line of end < 0 ? section : section.slice(0, end)) {
    if (!line.startsWith("|")) {
      rows = undefined;
      continue;
    }
    const cells = line
      .split("|")
      .slice(1, -1)
      .map((c) => c.trim());
    if (rows === undefined)
      tables.push((rows = [])); // the header row, left out
    else if (!cells.every((c) => /^:?-+:?$/.test(c))) rows.push(cells);
  }
  return tables;
}

/** The rows of the one table in the section `heading` opens, which must hold at least one row. */
function tableUnder(doc: string, heading: string, within?: string): string[][] {
  const [rows, ...more] = tablesUnder(doc, heading, within);
  expect(rows?.length ?? 0, `"${heading}" has a table with rows`).toBeGreaterThan(0);
  expect(more, `"${heading}" has one table`).toEqual([]);
  return rows ?? [];
}

describe("the error table in docs/api.md", () => {
  const rows = tableUnder(apiDoc, "## Error codes");

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

describe("the configuration table in docs/configuration.md", () => {
  const rows = tableUnder(configurationDoc, "## Variables");
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

describe("the agent protocols' tables in docs/agent-protocols.md", () => {
  const protocols = {
    "influx-write.ts": "## `POST /api/v2/write` — InfluxDB line protocol",
    "otlp-metrics.ts": "## `POST /v1/metrics` — OpenTelemetry (OTLP/HTTP)",
    "prometheus-write.ts": "## `POST /api/v1/write` — Prometheus remote write",
  };
  const catalogueStatuses = new Set<number>(Object.values(ERRORS).map((spec) => spec.status));

  it("lists each agent function's route, as its config declares it", () => {
    const documented = tableUnder(agentProtocolsDoc, "## The three endpoints").map(
      ([endpoint]) => /^`POST ([^?`]+)/.exec(endpoint ?? "")?.[1],
    );
    const declared = Object.keys(protocols).map(
      (file) => /path: "([^"]+)"/.exec(readDoc(`functions/${file}`))?.[1],
    );
    expect(documented).toEqual(declared);
  });

  for (const [file, section] of Object.entries(protocols)) {
    describe(section, () => {
      const rows = tableUnder(agentProtocolsDoc, "### Responses", section);

      it("answers only statuses of the catalogue, besides success and Netlify's 429", () => {
        for (const [status] of rows) {
          const code = Number(status);
          expect(
            code < 300 || code === 429 || catalogueStatuses.has(code),
            `${file}: ${status}`,
          ).toBe(true);
        }
      });

      it("names each error code of the catalogue in the row of its status", () => {
        let named = 0;
        for (const [status, ...cells] of rows) {
          for (const [, name] of cells.join(" ").matchAll(/`([a-z]+(?:_[a-z]+)+)`/g)) {
            const spec = (ERRORS as Record<string, { status: number }>)[name ?? ""];
            if (spec === undefined) continue;
            named++;
            expect(spec.status, `${file}: ${String(name)}`).toBe(Number(status));
          }
        }
        expect(named, `${file}: codes named in its responses`).toBeGreaterThan(0);
      });
    });
  }
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
