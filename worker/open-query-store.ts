import type { Config } from "../shared/config.ts";
import type { QueryStore } from "./query-store.ts";

/**
 * The reads of the store named by `DATABASE_URL`, on a connection of their own. Each module is
 * loaded only when chosen, as the stores are. Undefined for a store this worker cannot read.
 */
export async function openQueryStore(
  database: Config["database"],
): Promise<QueryStore | undefined> {
  if (database.url.startsWith("sqlite:")) {
    const { openSqliteQueries } = await import("./sqlite-queries.ts");
    return openSqliteQueries(database.url.slice("sqlite:".length));
  }
  if (/^postgres(ql)?:\/\//.test(database.url)) {
    const { openPostgresQueries } = await import("./postgres-queries.ts");
    return openPostgresQueries(database);
  }
  // Any other store (a remote-write receiver) is read with its own query language.
  return undefined;
}
