import { databaseDiskFull } from "./database-disk-full.ts";

/** 11. The SQLite file's disk fills mid-load (database-disk-full.ts has the scenario). */
databaseDiskFull("sqlite");
