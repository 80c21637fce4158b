import { randomBytes } from "node:crypto";
import pg from "pg";

/** Where the tests find PostgreSQL unless `TEST_PG_URL` names another server. */
const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/postgres";

export interface TestDatabase {
  /** A `postgres://` URL of the new, empty database. */
  readonly url: string;
  /** Drops the database, ending any connection still open to it. */
  drop(): Promise<void>;
}

/**
 * Creates a database of its own for one test file (or one benchmark run) on the server of
 * `TEST_PG_URL`, else PostgreSQL at 127.0.0.1:5432 as user `postgres`. Throws when that server
 * cannot be reached: the PostgreSQL tests are never skipped.
 */
export async function createTestDatabase(
  options: { tablespace?: string } = {},
): Promise<TestDatabase> {
  const serverUrl = process.env["TEST_PG_URL"] ?? DEFAULT_URL;
  const name = `test_${process.pid}_${randomBytes(4).toString("hex")}`;
  const tablespace = options.tablespace === undefined ? "" : ` TABLESPACE ${options.tablespace}`;
  await run(serverUrl, `CREATE DATABASE ${name}${tablespace}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => run(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

/**
 * A tablespace `name` in `dir` (an empty folder the PostgreSQL server's user owns, on the same machine
 * as the server), for a database whose disk a test fills.
 */
export async function createTablespace(
  name: string,
  dir: string,
): Promise<{ drop(): Promise<void> }> {
  const serverUrl = process.env["TEST_PG_URL"] ?? DEFAULT_URL;
  await run(serverUrl, `CREATE TABLESPACE ${name} LOCATION '${dir}'`);
  return { drop: () => run(serverUrl, `DROP TABLESPACE IF EXISTS ${name}`) };
}

async function run(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 5000 });
  // An error while connected (the server going away) then rejects the query below instead of
  // ending the test process.
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    const server =
      process.env["TEST_PG_URL"] === undefined
        ? "PostgreSQL at 127.0.0.1:5432 (user postgres, no password)"
        : `PostgreSQL at TEST_PG_URL (${client.host}:${client.port})`;
    throw new Error(
      `These tests need ${server}, and it cannot be reached (${String(err)}). Start PostgreSQL ` +
        "there, or set TEST_PG_URL=postgres://user:password@host:port/database to point the " +
        "tests at another server; they create and drop a database of their own on it.",
      { cause: err },
    );
  }
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
