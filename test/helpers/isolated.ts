import { join } from "node:path";
import type { Config } from "../../shared/config.ts";
import { testConfig } from "./ingest.ts";

/**
 * A configuration of its own for one test: its own stream, dead-letter stream, subjects and
 * SQLite file (or the given DATABASE_URL), so that tests sharing a server share no state.
 */
export function isolated(
  natsUrl: string,
  name: string,
  dir: string,
  overrides: Record<string, string> = {},
): { config: Config; env: Record<string, string>; dbPath: string } {
  const dbPath = join(dir, `${name}.db`);
  const env = {
    NATS_URL: natsUrl,
    NATS_STREAM: `S_${name}`,
    NATS_DLQ_STREAM: `S_${name}_DLQ`,
    NATS_SUBJECT_PREFIX: `m_${name}`,
    DATABASE_URL: `sqlite:${dbPath}`,
    WORKER_HTTP_PORT: "0",
    ...overrides,
  };
  return { config: testConfig(natsUrl, env), env, dbPath };
}
