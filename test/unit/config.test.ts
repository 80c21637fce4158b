import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../shared/config.ts";

/** The ConfigError `env` is refused with; fails the test when it is accepted. */
function problemsOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError, but the configuration was accepted");
}

const sha256Entry = `sha256:${"ab".repeat(32)}`;
/** A plain key as long as the shortest accepted (16 characters). */
const KEY = "key-one-16-chars";

describe("loadConfig defaults", () => {
  const config = loadConfig({});

  it("match the contract's table", () => {
    expect(config.nats.servers).toEqual(["nats://127.0.0.1:4222"]);
    expect(config.ingest.port).toBe(8080);
    expect(config.worker.httpPort).toBe(9091);
    expect(config.worker.httpHost).toBe("127.0.0.1");
    expect(config.ingest.maxFutureMs).toBe(600_000);
    expect(config.database.url).toMatch(/^sqlite:(\.\/)?\.data\/[^/]+$/);
    expect(config.ingest.apiKeys).toEqual([]);
    expect(config.ingest.authMode).toBeUndefined();
    expect(config.nats.creds).toBeUndefined();
    expect(config.nats.token).toBeUndefined();
    expect(config.nats.user).toBeUndefined();
    expect(config.nats.password).toBeUndefined();
  });

  it("name the stream, consumer and dead-letter stream of the contract", () => {
    expect(config.stream).toMatchObject({ name: "METRICS", subjectPrefix: "metrics" });
    expect(config.stream.dlqName).toBe("METRICS_DLQ");
    expect(config.consumer.name).toBe("metrics-worker");
  });

  it("treat empty and blank variables as unset", () => {
    expect(loadConfig({ PORT: "", NATS_URL: "   ", INGEST_API_KEYS: "" })).toEqual(config);
  });

  it("ignore variables the service does not read", () => {
    expect(loadConfig({ HOME: "/root", PATH: "/usr/bin", NATS_URLS: "x y" })).toEqual(config);
  });
});

describe("loadConfig values", () => {
  it("splits a comma-separated NATS_URL", () => {
    const config = loadConfig({ NATS_URL: "nats://a:4222,tls://b.example:4443,c:4222" });
    expect(config.nats.servers).toEqual(["nats://a:4222", "tls://b.example:4443", "c:4222"]);
  });

  it("accepts spaces after the commas of NATS_URL", () => {
    const config = loadConfig({ NATS_URL: "nats://a:4222, nats://b:4222" });
    expect(config.nats.servers).toEqual(["nats://a:4222", "nats://b:4222"]);
  });

  it("coerces integers and trims the text around them", () => {
    const config = loadConfig({
      PORT: "3000",
      WORKER_HTTP_PORT: " 0 ",
      WORKER_BATCH_SIZE: "20",
      WORKER_CONCURRENCY: "3",
      STREAM_MAX_BYTES: "-1",
      CONSUMER_MAX_DELIVER: "5",
      PUBLISH_TIMEOUT_MS: "1000",
    });
    expect(config.ingest.port).toBe(3000);
    expect(config.worker).toEqual({
      batchSize: 20,
      concurrency: 3,
      httpPort: 0,
      httpHost: "127.0.0.1",
    });
    expect(config.stream.maxBytes).toBe(-1);
    expect(config.consumer.maxDeliver).toBe(5);
    expect(config.nats.publishTimeoutMs).toBe(1000);
  });

  it.each(["abc", "1.5", "80abc", "true", "-1", "65536"])("refuses PORT=%j", (port) => {
    const err = problemsOf({ PORT: port });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(/^PORT: /);
  });

  it("keeps the API keys, plain and hashed, and the authentication mode", () => {
    const config = loadConfig({
      INGEST_API_KEYS: ` ${KEY} , ${sha256Entry},,`,
      INGEST_AUTH: "required",
    });
    expect(config.ingest.apiKeys).toEqual([KEY, sha256Entry]);
    expect(config.ingest.authMode).toBe("required");
    expect(loadConfig({ INGEST_AUTH: "none" }).ingest.authMode).toBe("none");
    expect(loadConfig({ INGEST_AUTH: "local" }).ingest.authMode).toBe("local");
  });

  it("keeps each key's scopes with it, a scope list running on after commas", () => {
    const config = loadConfig({
      INGEST_API_KEYS: `${sha256Entry}@json, ${KEY}@influx, otlp,prom ,other-key-16-chars`,
    });
    expect(config.ingest.apiKeys).toEqual([
      `${sha256Entry}@json`,
      `${KEY}@influx,otlp,prom`,
      "other-key-16-chars",
    ]);
  });

  it("reads WORKER_HTTP_HOST and MAX_FUTURE_SECONDS", () => {
    const config = loadConfig({ WORKER_HTTP_HOST: "0.0.0.0", MAX_FUTURE_SECONDS: "30" });
    expect(config.worker.httpHost).toBe("0.0.0.0");
    expect(config.ingest.maxFutureMs).toBe(30_000);
    expect(problemsOf({ MAX_FUTURE_SECONDS: "0" }).problems[0]).toMatch(/^MAX_FUTURE_SECONDS: /);
  });

  it("accepts a PostgreSQL or another SQLite DATABASE_URL and refuses anything else", () => {
    expect(loadConfig({ DATABASE_URL: "sqlite:/var/lib/m.db" }).database.url).toBe(
      "sqlite:/var/lib/m.db",
    );
    expect(loadConfig({ DATABASE_URL: "postgres://db/metrics" }).database.url).toBe(
      "postgres://db/metrics",
    );
    expect(problemsOf({ DATABASE_URL: "mysql://db/metrics" }).problems).toHaveLength(1);
  });

  it("returns a deeply frozen object", () => {
    const config = loadConfig({ INGEST_API_KEYS: KEY });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.nats)).toBe(true);
    expect(Object.isFrozen(config.nats.servers)).toBe(true);
    expect(Object.isFrozen(config.ingest.apiKeys)).toBe(true);
    expect(() => {
      (config.ingest as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => (config.ingest.apiKeys as string[]).push("x")).toThrow(TypeError);
    expect(config.ingest.port).toBe(8080);
  });
});

describe("RETENTION", () => {
  it("is unset by default: samples are kept for ever", () => {
    expect(loadConfig({}).database.retentionMs).toBeUndefined();
  });

  it("reads a number and a unit: hours, days, weeks, years of 365 days", () => {
    const ms = (RETENTION: string) => loadConfig({ RETENTION }).database.retentionMs;
    expect(ms("36h")).toBe(36 * 3_600_000);
    expect(ms("30d")).toBe(30 * 86_400_000);
    expect(ms("2w")).toBe(14 * 86_400_000);
    expect(ms("1y")).toBe(365 * 86_400_000);
  });

  it("refuses anything else, saying what it must look like", () => {
    for (const RETENTION of ["30", "0d", "1.5d", "30 d", "30m", "d"]) {
      expect(problemsOf({ RETENTION }).problems).toEqual([
        "RETENTION: must be a number and a unit, h, d, w or y (e.g. 30d)",
      ]);
    }
  });
});

describe("loadConfig problems", () => {
  it("reports every bad variable together, one problem each", () => {
    const err = problemsOf({ PORT: "abc", STREAM_REPLICAS: "9", WORKER_HTTP_PORT: "-1" });
    expect(err.problems).toHaveLength(3);
    expect(err.problems.map((p) => p.split(":")[0]).sort()).toEqual([
      "PORT",
      "STREAM_REPLICAS",
      "WORKER_HTTP_PORT",
    ]);
    for (const problem of err.problems) expect(err.message).toContain(problem);
  });

  it("reports a variable outside a list of allowed values as one problem", () => {
    const err = problemsOf({ LOG_LEVEL: "loud", INGEST_AUTH: "None", PORT: "x" });
    expect(err.problems).toHaveLength(3);
  });

  it("reports every broken rule across variables together", () => {
    const err = problemsOf({
      NATS_URL: "http://a:80",
      NATS_USER: "u",
      INGEST_API_KEYS: "sha256:abc",
      NATS_STREAM: "S",
      NATS_DLQ_STREAM: "S",
    });
    expect(err.problems.map((p) => p.split(":")[0])).toEqual([
      "NATS_URL",
      "NATS_USER and NATS_PASSWORD",
      "INGEST_API_KEYS",
      "NATS_DLQ_STREAM",
    ]);
  });

  it("reports a bad variable and a broken rule together", () => {
    const err = problemsOf({ PORT: "x", NATS_USER: "u" });
    expect(err.problems).toHaveLength(2);
    expect(err.problems.some((p) => p.startsWith("PORT"))).toBe(true);
    expect(err.problems.some((p) => p.startsWith("NATS_USER"))).toBe(true);
  });

  it("requires NATS_USER and NATS_PASSWORD together, and never shows the password", () => {
    const err = problemsOf({ NATS_PASSWORD: "supersecret" });
    expect(err.problems).toEqual(["NATS_USER and NATS_PASSWORD: set both or neither"]);
    expect(err.message).not.toContain("supersecret");
    expect(loadConfig({ NATS_USER: "u", NATS_PASSWORD: "p" }).nats).toMatchObject({
      user: "u",
      password: "p",
    });
  });

  it("never shows a secret beside a bad value of the same kind", () => {
    const err = problemsOf({
      NATS_TOKEN: "supersecret-token",
      NATS_PASSWORD: "supersecret",
      PORT: "x",
    });
    expect(err.message).not.toContain("supersecret");
  });

  it("never shows credentials written into a refused NATS_URL", () => {
    const err = problemsOf({ NATS_URL: "nats://user:supersecret@nats.example:4222/extra" });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(/^NATS_URL/);
    expect(err.message).not.toContain("supersecret");
  });

  it("refuses a sha256: entry of INGEST_API_KEYS that is not 64 hex digits, naming the entry", () => {
    const err = problemsOf({ INGEST_API_KEYS: `${KEY},${sha256Entry},sha256:abc123` });
    expect(err.problems).toEqual([
      "INGEST_API_KEYS: entry 3 starts with sha256: but is not 64 hex digits",
    ]);
    expect(problemsOf({ INGEST_API_KEYS: `sha256:${"g".repeat(64)}` }).problems).toHaveLength(1);
  });

  it("never shows an API key in a problem", () => {
    const err = problemsOf({ INGEST_API_KEYS: "plain-secret-key,sha256:deadbeef" });
    expect(err.message).not.toContain("plain-secret-key");
    expect(err.message).not.toContain("deadbeef");
  });

  it("refuses INGEST_AUTH=none or local together with API keys", () => {
    for (const mode of ["none", "local"]) {
      const err = problemsOf({ INGEST_AUTH: mode, INGEST_API_KEYS: KEY });
      expect(err.problems).toEqual([
        `INGEST_AUTH: is ${mode} while INGEST_API_KEYS is set; unset one of them`,
      ]);
    }
  });

  it("refuses a key shorter than 16 characters, naming the entry and how to make one", () => {
    const err = problemsOf({ INGEST_API_KEYS: `${KEY},a,fifteen-chars-k` });
    expect(err.problems).toEqual([
      "INGEST_API_KEYS: entry 2 is shorter than 16 characters; make keys with npm run keygen",
      "INGEST_API_KEYS: entry 3 is shorter than 16 characters; make keys with npm run keygen",
    ]);
    expect(err.message).not.toContain("fifteen-chars-k");
  });

  it("refuses an unknown scope, a scope without a key and an empty scope list, quoting none", () => {
    const err = problemsOf({
      INGEST_API_KEYS: `json,${KEY}@influx,otel,${sha256Entry}@,${KEY}@JSON`,
    });
    expect(err.problems).toEqual([
      "INGEST_API_KEYS: entry 1 is a scope with no key before it (write <key>@json)",
      "INGEST_API_KEYS: entry 2 names a scope that does not exist (after @); scopes are json, influx, otlp, prom, read",
      "INGEST_API_KEYS: entry 3 names a scope that does not exist (after @); scopes are json, influx, otlp, prom, read",
      "INGEST_API_KEYS: entry 4 names a scope that does not exist (after @); scopes are json, influx, otlp, prom, read",
    ]);
    expect(err.message).not.toContain(KEY);
  });

  it("reports all of a bad entry's problems: a short key and an unknown scope", () => {
    expect(problemsOf({ INGEST_API_KEYS: "short@nope" }).problems).toHaveLength(2);
  });

  it("refuses a CA that is not a PEM certificate, without repeating it", () => {
    expect(problemsOf({ NATS_CA: "not-a-cert", PG_SSL_CA: "nor this" }).problems).toEqual([
      "NATS_CA: is not a PEM certificate",
      "PG_SSL_CA: is not a PEM certificate",
    ]);
  });

  it("refuses a CORS origin that is not one", () => {
    expect(
      problemsOf({ CORS_ALLOWED_ORIGINS: "https://ok.example.com, app.example.com" }).problems,
    ).toEqual([
      "CORS_ALLOWED_ORIGINS: entry 2 is not an origin such as https://app.example.com, or *",
    ]);
  });

  it("refuses a dead-letter stream that is the stream itself", () => {
    expect(problemsOf({ NATS_DLQ_STREAM: "METRICS" }).problems).toEqual([
      "NATS_DLQ_STREAM: must differ from NATS_STREAM",
    ]);
  });

  it("is a ConfigError whose message lists each problem", () => {
    const err = problemsOf({ PORT: "x", STREAM_REPLICAS: "0" });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("ConfigError");
    expect(err.message).toBe(`invalid configuration:\n  - ${err.problems.join("\n  - ")}`);
  });

  it("says a single problem on one line, in words rather than a pattern", () => {
    const err = problemsOf({ DATABASE_URL: "mysql://db/metrics" });
    expect(err.message).toBe(
      "invalid configuration: DATABASE_URL: must be sqlite:<path of a file>, postgres://user:password@host:port/database or remote-write+http(s)://host:port/path",
    );
  });
});
