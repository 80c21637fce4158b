import { databaseDiskFull } from "./database-disk-full.ts";

/**
 * 15. The disk of the PostgreSQL database's tablespace fills mid-load (database-disk-full.ts has
 * the scenario). The worker's ping then writes into a temporary table until there is room again.
 */
databaseDiskFull("postgres");
