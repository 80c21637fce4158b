import type { Config } from "../shared/config.ts";
import type { MetricRow } from "./metric-rows.ts";

/** Where metrics end up. Each implementation owns its schema and creates it when opened. */
export interface MetricStore {
  /**
   * Stores the rows in one transaction, skipping any whose `dedupKey` is already stored, and
   * resolves only once that transaction committed. Resolves to the number of rows added.
   */
  insert(rows: readonly MetricRow[]): Promise<number>;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Opens the store named by `DATABASE_URL`. */
export async function openStore(database: Config["database"]): Promise<MetricStore> {
  if (database.url.startsWith("sqlite:")) {
    const { openSqliteStore } = await import("./sqlite-store.ts");
    return openSqliteStore(database.url.slice("sqlite:".length));
  }
  throw new Error("DATABASE_URL: PostgreSQL is not supported by this worker yet");
}
