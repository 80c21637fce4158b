import type { Config } from "../shared/config.ts";
import type { MetricStore, MetricStoreOptions } from "./metric-store.ts";

/**
 * Opens the store named by `DATABASE_URL`. Each store's module is loaded only when chosen, so
 * a worker on SQLite never loads `pg`.
 */
export async function openStore(
  database: Config["database"],
  options: MetricStoreOptions = {},
): Promise<MetricStore> {
  if (database.url.startsWith("sqlite:")) {
    const { openSqliteStore } = await import("./sqlite-store.ts");
    return openSqliteStore(database.url.slice("sqlite:".length));
  }
  if (/^postgres(ql)?:\/\//.test(database.url)) {
    const { openPostgresStore } = await import("./postgres-store.ts");
    return openPostgresStore(database, options);
  }
  if (/^remote-write\+https?:\/\//.test(database.url)) {
    const { openRemoteWriteStore } = await import("./remote-write-store.ts");
    return openRemoteWriteStore(database, options);
  }
  throw new Error(
    "DATABASE_URL: must start with sqlite:, postgres://, postgresql:// or remote-write+http(s)://",
  );
}
