import type { Config } from "../shared/config.ts";
import type { MetricRow } from "./metric-rows.ts";
import type { PostgresStoreOptions } from "./postgres-store.ts";

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

/**
 * Opens the store named by `DATABASE_URL`. Each store's module is loaded only when chosen, so
 * a worker on SQLite never loads `pg`.
 */
export async function openStore(
  database: Config["database"],
  options: PostgresStoreOptions = {},
): Promise<MetricStore> {
  if (database.url.startsWith("sqlite:")) {
    const { openSqliteStore } = await import("./sqlite-store.ts");
    return openSqliteStore(database.url.slice("sqlite:".length));
  }
  if (/^postgres(ql)?:\/\//.test(database.url)) {
    const { openPostgresStore } = await import("./postgres-store.ts");
    return openPostgresStore(database, options);
  }
  throw new Error("DATABASE_URL: must start with sqlite:, postgres:// or postgresql://");
}
