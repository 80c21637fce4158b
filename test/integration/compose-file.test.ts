import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { accessModeOf } from "../../edge/http/auth.ts";
import { loadConfig } from "../../shared/config.ts";
import { createHandlers } from "../../edge/http/handlers.ts";
import { isLoopbackHost } from "../../edge/http/loopback.ts";
import { ConfigEnv } from "../../shared/config-schema.ts";
import { WORKER_NODE_ARGS } from "../../worker/command.ts";
import { PROJECT_ROOT } from "../helpers/processes.ts";
import { silentLogger } from "../helpers/logger.ts";

/**
 * There is no Docker engine where this project is built, so docker-compose.yml and the
 * Dockerfile are checked without one: the compose file by Debian's docker-compose 1.x
 * (`config -q` validates it against the compose schema) and by reading it, the Dockerfile by
 * reading it and the sources it must hold.
 */
const run = promisify(execFile);
const read = (file: string) => readFileSync(join(PROJECT_ROOT, file), "utf8");

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test?: string | string[] };
  depends_on?: Record<string, { condition?: string }>;
  restart?: string;
}

const compose = parse(read("docker-compose.yml")) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const services = compose.services;
const service = (name: string): Service => {
  const s = services[name];
  if (s === undefined) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};
const env = (name: string): Record<string, string> =>
  Object.fromEntries(
    Object.entries(service(name).environment ?? {}).map(([k, v]) => [k, String(v)]),
  );
const healthTest = (name: string): string =>
  [service(name).healthcheck?.test ?? []].flat().join(" ");

/** `[host address, host port, container port]` of each published port. */
function published(name: string): [string, number, number][] {
  return (service(name).ports ?? []).map((spec) => {
    const parts = spec.split(":");
    const [container, hostPort, address] = [parts.at(-1), parts.at(-2), parts.at(-3)];
    return [address ?? "0.0.0.0", Number(hostPort ?? container), Number(container)];
  });
}

/** The named volumes a service mounts, as `volume → path in the container`. */
function namedVolumes(name: string): Map<string, string> {
  const mounts = (service(name).volumes ?? []).map((v) => v.split(":"));
  return new Map(
    mounts
      .filter(([source]) => source !== undefined && compose.volumes?.[source] !== undefined)
      .map(([source, target]) => [source ?? "", target ?? ""]),
  );
}

/** `key: value` (or `key = value`) on a line of its own in `text`, quotes dropped. */
function setting(text: string, key: string): string | undefined {
  return new RegExp(`^\\s*${key}\\s*[:=]\\s*"?([^"\\s]+)"?\\s*$`, "m").exec(text)?.[1];
}

/** The settings of nats/nats-server.conf the compose file relies on (a flat reading). */
function natsConf() {
  const text = read("nats/nats-server.conf").replace(/#.*$/gm, "");
  const jetstream = /^\s*jetstream\s*\{([^}]*)\}/m.exec(text)?.[1] ?? "";
  return {
    listen: setting(text, "listen"),
    http: setting(text, "http"),
    storeDir: setting(jetstream, "store_dir"),
    syncInterval: setting(jetstream, "sync_interval"),
  };
}

describe("docker-compose.yml", () => {
  it("is valid for docker-compose (config -q)", async () => {
    const binary = (process.env["PATH"] ?? "")
      .split(":")
      .map((d) => join(d, "docker-compose"))
      .find((p) => existsSync(p));
    if (binary === undefined) {
      throw new Error(
        "docker-compose not found on PATH: install Debian's (apt-get install docker-compose), as .ci/run does; it validates the compose file without a Docker engine",
      );
    }
    const result = await run(binary, ["-f", "docker-compose.yml", "config", "-q"], {
      cwd: PROJECT_ROOT,
    }).catch((err: unknown) => {
      const { stderr } = err as { stderr?: string };
      throw new Error(`docker-compose config -q refused the file:\n${stderr ?? String(err)}`);
    });
    // -q: a valid file prints nothing, an invalid one exits non-zero (above).
    expect(result.stdout.trim()).toBe("");
  });

  it("runs nats, postgres, the worker and the ingest server", () => {
    expect(Object.keys(services).sort()).toEqual(["ingest", "nats", "postgres", "worker"]);
  });

  it("runs NATS from nats/nats-server.conf: JetStream on a named volume, monitoring on 8222", () => {
    const nats = service("nats");
    expect(nats.image).toMatch(/^nats:2\.10/);
    const command = [nats.command ?? []].flat();
    expect(command[0]).toMatch(/^(-c|--config)$/);
    const confPath = command[1];
    // The config file is the project's own, mounted read-only where the command reads it.
    const mount = (nats.volumes ?? [])
      .map((v) => v.split(":"))
      .find(([, target]) => target === confPath);
    expect(mount, `a volume mounting the file at ${confPath ?? "?"}`).toBeDefined();
    expect(mount?.[0]).toBe("./nats/nats-server.conf");
    expect(mount?.[2]).toBe("ro");
    const conf = natsConf();
    expect(conf.listen).toMatch(/:4222$/);
    expect(conf.http).toMatch(/:8222$/);
    expect([...namedVolumes("nats").values()]).toContain(conf.storeDir);
    expect(healthTest("nats")).toMatch(/wget .*:8222\/healthz\?js-enabled-only=true/);
  });

  it("makes NATS fsync every JetStream write before acknowledging it (sync_interval: always)", () => {
    // Without it nats-server syncs every 2 minutes, and a machine crash can lose acknowledged
    // metrics; test/faults/00-durability-cost.fault.ts checks that a 2.10 server reads it so.
    expect(natsConf().syncInterval).toBe("always");
  });

  it("runs PostgreSQL with its data on a named volume and pg_isready as health check", () => {
    const pg = service("postgres");
    expect(pg.image).toMatch(/^postgres:16/);
    expect([...namedVolumes("postgres").values()]).toContain("/var/lib/postgresql/data");
    expect(healthTest("postgres")).toMatch(/pg_isready/);
    expect(env("postgres")["POSTGRES_PASSWORD"]).toBeTruthy();
    // Not published: reachable only inside the compose network.
    expect(published("postgres")).toEqual([]);
  });

  it("gives every service a health check and a restart policy", () => {
    for (const [name, s] of Object.entries(services)) {
      expect([s.healthcheck?.test ?? []].flat().length, `${name}'s healthcheck`).toBeGreaterThan(1);
      expect(s.restart, `${name}'s restart policy`).toBe("unless-stopped");
    }
  });

  it("builds the worker and the ingest server from the project's Dockerfile", () => {
    for (const name of ["worker", "ingest"]) {
      const build = service(name).build;
      const { context, dockerfile } =
        typeof build === "string" ? { context: build, dockerfile: undefined } : (build ?? {});
      expect(context, `${name}'s build context`).toBe(".");
      expect(dockerfile ?? "Dockerfile").toBe("Dockerfile");
    }
    expect(existsSync(join(PROJECT_ROOT, "Dockerfile"))).toBe(true);
    expect([service("ingest").command ?? []].flat()).toEqual(["node", "server/main.ts"]);
    expect(service("worker").command).toBeUndefined(); // the image's CMD: the worker
  });

  it("sets only variables the configuration knows, and a configuration that loads", () => {
    const known = new Set(Object.keys(ConfigEnv.properties));
    for (const name of ["worker", "ingest"]) {
      const vars = env(name);
      for (const key of Object.keys(vars)) {
        expect(known.has(key), `${name} sets ${key}, which shared/config.ts does not read`).toBe(
          true,
        );
      }
      expect(() => loadConfig(vars), `${name}'s environment`).not.toThrow();
      expect(new URL(vars["NATS_URL"] ?? "").hostname).toBe("nats");
    }
  });

  it("points the worker at the postgres service's database", () => {
    const url = new URL(env("worker")["DATABASE_URL"] ?? "");
    const pg = env("postgres");
    expect(url.protocol).toBe("postgres:");
    expect(url.hostname).toBe("postgres");
    expect(url.port || "5432").toBe("5432");
    expect(url.username).toBe(pg["POSTGRES_USER"]);
    expect(decodeURIComponent(url.password)).toBe(pg["POSTGRES_PASSWORD"]);
    expect(url.pathname).toBe(`/${pg["POSTGRES_DB"] ?? ""}`);
    expect(loadConfig(env("worker")).database.url).toBe(url.toString());
  });

  it("starts the worker after healthy NATS and PostgreSQL, the ingest server after the worker", () => {
    expect(service("worker").depends_on).toEqual({
      nats: { condition: "service_healthy" },
      postgres: { condition: "service_healthy" },
    });
    expect(service("ingest").depends_on).toMatchObject({
      nats: { condition: "service_healthy" },
      worker: { condition: "service_healthy" },
    });
  });

  it("checks the worker's /healthz and the ingest server's /api/v1/health on their ports", () => {
    const worker = loadConfig(env("worker"));
    expect(healthTest("worker")).toContain(`http://127.0.0.1:${worker.worker.httpPort}/healthz`);
    const ingest = loadConfig(env("ingest"));
    expect(healthTest("ingest")).toContain(`http://127.0.0.1:${ingest.ingest.port}/api/v1/health`);
    expect(ingest.ingest.host).toBe("0.0.0.0");
  });

  it("runs the ingest server without a key in local mode: a loopback Host only, no other origin", async () => {
    const config = loadConfig({
      ...env("ingest"),
      // Nothing answers here: a request let through fails at the broker, after the checks.
      NATS_URL: "nats://127.0.0.1:1",
      NATS_CONNECT_TIMEOUT_MS: "200",
    });
    // As server/main.ts decides it: HOST=0.0.0.0 is not loopback, INGEST_AUTH=local says local.
    const isLocal = isLoopbackHost(config.ingest.host);
    expect(isLocal).toBe(false);
    expect(accessModeOf({ ...config.ingest, isLocal })).toBe("local");
    const handlers = createHandlers(config, {
      isLocal,
      logger: silentLogger,
      connectionName: "compose-test",
    });
    const post = (host: string, headers: Record<string, string> = {}) =>
      handlers.influxWrite(
        new Request(`http://${host}/api/v2/write?bucket=b`, {
          method: "POST",
          headers: { "content-type": "text/plain", ...headers },
          body: "m v=1",
        }),
      );
    const codeOf = async (res: Response) =>
      ((await res.json()) as { error: { code: string } }).error.code;
    try {
      // curl http://localhost:8080 (or 127.0.0.1) from the host, through the published port.
      expect(await codeOf(await post("localhost:8080"))).toBe("nats_unavailable");
      expect(await codeOf(await post("127.0.0.1:8080"))).toBe("nats_unavailable");
      // Another container's name, a LAN name, a rebound attacker's name.
      for (const host of ["ingest:8080", "192.0.2.10:8080", "attacker.example:8080"]) {
        expect(await codeOf(await post(host)), host).toBe("host_not_allowed");
      }
      const page = await post("localhost:8080", { origin: "https://attacker.example" });
      expect(page.status).toBe(403);
      expect(await codeOf(page)).toBe("origin_not_allowed");
    } finally {
      await handlers.close();
    }
    // The health check asks 127.0.0.1, which local mode takes.
    expect(new URL(/http:\/\/[^']+/.exec(healthTest("ingest"))?.[0] ?? "").hostname).toBe(
      "127.0.0.1",
    );
  });

  it("lets the worker's HTTP port listen in its container only; nothing publishes it", () => {
    expect(loadConfig(env("worker")).worker.httpHost).toBe("0.0.0.0");
    expect(published("worker")).toEqual([]);
  });

  it("publishes 4222, 8222 and 8080, on the host's loopback only", () => {
    const all = Object.keys(services).flatMap((name) => published(name));
    expect(all.map(([, host]) => host).sort()).toEqual([4222, 8080, 8222]);
    for (const [address] of all) expect(address).toBe("127.0.0.1");
    const ingest = loadConfig(env("ingest"));
    expect(published("ingest").map(([, , container]) => container)).toEqual([ingest.ingest.port]);
  });
});

/** The instructions of a Dockerfile, continuation lines joined, comments dropped. */
function instructions(text: string): { op: string; args: string }[] {
  return text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const [op = "", ...rest] = line.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(" ") };
    });
}

/**
 * What the worker and the server load: each relative import followed from their entry points,
 * as the project's top-level folders it touches, and the npm packages it names.
 */
function importGraph(entries: readonly string[]): { folders: Set<string>; packages: Set<string> } {
  const folders = new Set<string>();
  const packages = new Set<string>();
  const seen = new Set<string>();
  const queue = entries.map((e) => join(PROJECT_ROOT, e));
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    folders.add(relative(PROJECT_ROOT, file).split("/")[0] ?? "");
    const source = readFileSync(file, "utf8");
    // Type-only imports are erased when Node strips the types: they load nothing.
    const statements = source.match(/^(?:import|export)(?!\s+type\s)[^;]*?from\s+"[^"]+"/gm) ?? [];
    const dynamic = [...source.matchAll(/import\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1] ?? "");
    for (const spec of [...statements.map((s) => /"([^"]+)"$/.exec(s)?.[1] ?? ""), ...dynamic]) {
      if (spec.startsWith(".")) queue.push(join(dirname(file), spec));
      else if (!spec.startsWith("node:")) {
        const parts = spec.split("/");
        packages.add(spec.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? ""));
      }
    }
  }
  return { folders, packages };
}

describe("Dockerfile", () => {
  const steps = instructions(read("Dockerfile"));
  const froms = steps.filter((s) => s.op === "FROM");
  const finalStage = steps.slice(steps.map((s) => s.op).lastIndexOf("FROM"));

  it("is multi-stage, installing production dependencies only in the first stage", () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(steps.some((s) => s.op === "RUN" && /\bnpm ci\b.*--omit=dev/.test(s.args))).toBe(true);
    expect(
      finalStage.some((s) => s.op === "COPY" && /--from=\S+ .*node_modules/.test(s.args)),
    ).toBe(true);
    expect(finalStage.some((s) => s.op === "RUN" && /\bnpm (ci|install)\b/.test(s.args))).toBe(
      false,
    );
  });

  it("runs as a user that is not root", () => {
    const users = finalStage.filter((s) => s.op === "USER").map((s) => s.args.split(":")[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)$/);
  });

  it("has a health check and runs the worker by default", () => {
    const health = finalStage.find((s) => s.op === "HEALTHCHECK");
    expect(health?.args).toMatch(/\/healthz/);
    expect(health?.args).not.toMatch(/^NONE/);
    const cmd = finalStage.filter((s) => s.op === "CMD").at(-1);
    expect(JSON.parse(cmd?.args ?? "null")).toEqual(["node", ...WORKER_NODE_ARGS]);
  });

  it("starts the worker as `npm run worker` does", () => {
    const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    // `exec`: npm's shell gives way to node, so a signal sent to npm's process reaches the worker.
    expect(pkg.scripts["worker"]).toBe(["exec", "node", ...WORKER_NODE_ARGS].join(" "));
  });

  it("copies every folder the worker and the server load, and package.json", () => {
    const copied = new Set(
      finalStage
        .filter((s) => s.op === "COPY" && !s.args.startsWith("--from"))
        .map((s) => s.args.split(/\s+/)[0]),
    );
    const { folders } = importGraph(["worker/main.ts", "server/main.ts"]);
    expect([...folders].sort()).toEqual(expect.arrayContaining(["server", "shared", "worker"]));
    for (const folder of folders) expect(copied.has(folder), `COPY ${folder}`).toBe(true);
    // "type": "module" is what makes Node read the .ts files as ES modules.
    expect(copied.has("package.json")).toBe(true);
    const ignored = read(".dockerignore")
      .split("\n")
      .map((l) => l.trim());
    for (const folder of [...folders, "package.json", "package-lock.json"]) {
      expect(ignored, `.dockerignore keeps ${folder} out`).not.toContain(folder);
    }
  });

  it("finds every package the worker and the server import among the production dependencies", () => {
    const { packages } = importGraph(["worker/main.ts", "server/main.ts"]);
    const pkg = JSON.parse(read("package.json")) as { dependencies: Record<string, string> };
    expect(packages.size).toBeGreaterThan(0);
    for (const name of packages) {
      expect(pkg.dependencies[name], `${name} is a production dependency`).toBeDefined();
    }
  });
});
