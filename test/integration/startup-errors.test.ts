import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsServerBinary, startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { freePort, startChild, startWorker, type Child } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * Every start-up failure a user can cause ends the process with exit code 1 and one line that
 * says what failed and how to fix it, on real processes: no stack trace, no dump of an error
 * object. Stack traces are for bugs.
 */
const PG_SERVER = new URL(
  process.env["TEST_PG_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres",
);

let nats: NatsServer;
let dir: string;
let held: Server;
let heldPort: number;

beforeAll(async () => {
  nats = await startNatsServer();
  dir = await mkdtemp(join(tmpdir(), "startup-errors-"));
  held = createServer();
  await new Promise<void>((resolve) => held.listen(0, "127.0.0.1", resolve));
  heldPort = (held.address() as { port: number }).port;
});

afterAll(async () => {
  held.close();
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A PostgreSQL URL on the test server with `change` applied. */
function pgUrl(change: (url: URL) => void): string {
  const url = new URL(PG_SERVER);
  change(url);
  return url.toString();
}

/**
 * Waits for the process to end: its exit code, and the lines it wrote that are not its JSON log
 * (stdout and stderr are read through two pipes, so their order is not kept).
 */
async function failure(
  child: Child,
): Promise<{ code: number | string; said: string[]; all: string }> {
  const code = await Promise.race([
    child.exited,
    new Promise<string>((resolve) => setTimeout(resolve, 30_000, "still running after 30 s")),
  ]);
  await child.stop("SIGKILL");
  const said = child
    .output()
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("{"));
  return { code, said, all: child.output() };
}

/** Exit code 1 and one line besides the JSON log, matching `pattern`; no stack, no dump. */
function expectOneClearLine(
  result: { code: number | string; said: string[]; all: string },
  pattern: RegExp,
) {
  expect(result.code, result.all).toBe(1);
  expect(result.said, result.all).toHaveLength(1);
  expect(result.said[0], result.all).toMatch(pattern);
  expect(result.all).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  expect(result.all).not.toMatch(/\[cause\]|^\s+code: '|Node\.js v\d/m);
}

const sqlite = () => `sqlite:${join(dir, `${String(Math.random()).slice(2)}.db`)}`;

describe("the worker's start-up failures", () => {
  it("names a PostgreSQL database that does not exist, and how to create it", async () => {
    const url = pgUrl((u) => (u.pathname = "/no_such_database_here"));
    const result = await failure(startWorker({ NATS_URL: nats.url, DATABASE_URL: url }));
    expectOneClearLine(
      result,
      /^worker: PostgreSQL at .+\/no_such_database_here: database "no_such_database_here" does not exist; create it \(createdb no_such_database_here\)/,
    );
  });

  it("names a PostgreSQL that cannot be reached", async () => {
    const port = await freePort();
    const url = pgUrl((u) => (u.port = String(port)));
    const result = await failure(startWorker({ NATS_URL: nats.url, DATABASE_URL: url }));
    expectOneClearLine(
      result,
      new RegExp(
        `^worker: cannot reach PostgreSQL at 127\\.0\\.0\\.1:${port}/postgres \\(ECONNREFUSED\\): is the server running\\? check DATABASE_URL`,
      ),
    );
  });

  it("names refused credentials without repeating them", async () => {
    const url = pgUrl((u) => {
      u.username = "no_such_role";
      u.password = "secret-password";
    });
    const result = await failure(startWorker({ NATS_URL: nats.url, DATABASE_URL: url }));
    expectOneClearLine(
      result,
      /^worker: PostgreSQL at .+ refused the login: .*no_such_role.*; check DATABASE_URL's user and password$/,
    );
    expect(result.all).not.toContain("secret-password");
  });

  it("names a DATABASE_URL of no known kind", async () => {
    const result = await failure(startWorker({ NATS_URL: nats.url, DATABASE_URL: "mysql://db/x" }));
    expectOneClearLine(
      result,
      /^worker: invalid configuration: DATABASE_URL: must be sqlite:.+, postgres:\/\/.+ or remote-write\+http\(s\):\/\//,
    );
  });

  it("names a SQLite file that cannot be made", async () => {
    // Its folder would have to be made inside a regular file.
    const file = join(dir, "a-file");
    await writeFile(file, "");
    const result = await failure(
      startWorker({ NATS_URL: nats.url, DATABASE_URL: `sqlite:${file}/metrics.db` }),
    );
    expectOneClearLine(
      result,
      /^worker: cannot open the SQLite file .+\/a-file\/metrics\.db: .+; check DATABASE_URL/,
    );
  });

  it("names a NATS that cannot be reached", async () => {
    const port = await freePort();
    const result = await failure(
      startWorker({ NATS_URL: `nats://127.0.0.1:${port}`, DATABASE_URL: sqlite() }),
    );
    expectOneClearLine(
      result,
      new RegExp(`^worker: cannot reach NATS at nats://127\\.0\\.0\\.1:${port}.*check NATS_URL$`),
    );
  });

  it("names a NATS server without JetStream", async () => {
    const port = await freePort();
    const plain = startChild(natsServerBinary(), ["-a", "127.0.0.1", "-p", String(port)], {});
    try {
      await waitFor("the plain nats-server", () =>
        plain.output().includes("Server is ready") ? true : undefined,
      );
      const result = await failure(
        startWorker({ NATS_URL: `nats://127.0.0.1:${port}`, DATABASE_URL: sqlite() }),
      );
      expectOneClearLine(
        result,
        /^worker: the NATS server at .+ has no JetStream: start it with -js/,
      );
    } finally {
      await plain.stop();
    }
  });

  it("names its HTTP port when another process holds it", async () => {
    const result = await failure(
      startWorker({
        NATS_URL: nats.url,
        DATABASE_URL: sqlite(),
        WORKER_HTTP_PORT: String(heldPort),
      }),
    );
    expectOneClearLine(
      result,
      new RegExp(
        `^worker: port ${heldPort} is already in use: stop what holds it, or set WORKER_HTTP_PORT to another port$`,
      ),
    );
  });
});

describe("the ingest server's start-up failures", () => {
  it("names its port when another process holds it", async () => {
    const serve = startChild(process.execPath, ["server/main.ts"], {
      NATS_URL: nats.url,
      PORT: String(heldPort),
    });
    const result = await failure(serve);
    expectOneClearLine(
      result,
      new RegExp(
        `^ingest server: port ${heldPort} is already in use: stop what holds it, or set PORT to another port$`,
      ),
    );
  });
});

describe("the ingest server's start-up failures with SERVE_PROCESSES=2", () => {
  it("names its port, and exits 1 as one process would", async () => {
    const serve = startChild(process.execPath, ["server/main.ts"], {
      NATS_URL: nats.url,
      PORT: String(heldPort),
      SERVE_PROCESSES: "2",
    });
    const result = await failure(serve);
    expect(result.code, result.all).toBe(1);
    // Each server process that tried to listen says so; none says anything else.
    expect(result.said.length, result.all).toBeGreaterThanOrEqual(1);
    for (const line of result.said) {
      expect(line, result.all).toMatch(
        new RegExp(
          `^ingest server: port ${heldPort} is already in use: stop what holds it, or set PORT to another port$`,
        ),
      );
    }
    expect(result.all).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  });
});

describe("npm start's start-up failures", () => {
  it("names netlify dev's port when another process holds it", async () => {
    const start = startChild(process.execPath, ["scripts/start.ts", "--port", String(heldPort)], {
      NATS_URL: nats.url,
      DATABASE_URL: sqlite(),
    });
    const result = await failure(start);
    expectOneClearLine(
      result,
      new RegExp(
        `^\\[start\\] error: port ${heldPort} is already in use .*npm start -- --port <another>$`,
      ),
    );
  });

  it("names a NATS_URL that cannot be reached", async () => {
    const port = await freePort();
    const start = startChild(
      process.execPath,
      ["scripts/start.ts", "--port", String(await freePort())],
      {
        NATS_URL: `nats://127.0.0.1:${port}`,
        DATABASE_URL: sqlite(),
      },
    );
    const result = await failure(start);
    expectOneClearLine(
      result,
      new RegExp(`^\\[start\\] error: cannot reach NATS at nats://127\\.0\\.0\\.1:${port}`),
    );
  });
});
