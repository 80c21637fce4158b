import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { workerHttpPort } from "../helpers/processes.ts";
import { startLoad } from "./load.ts";
import type { NatsSetup } from "./nats-nodes.ts";
import { at, finish, loadOptions, size, startForFile } from "./scenario.ts";
import type { System } from "./system.ts";
import { mountSmallDisk, type SmallDisk } from "./tmpfs.ts";
import { createTablespace } from "../helpers/postgres.ts";

/**
 * The database's disk fills mid-load, for scenarios 11 (SQLite) and 15 (PostgreSQL): the SQLite
 * file, or the PostgreSQL database's tablespace, on a small tmpfs that a filler file takes to the
 * last byte, then deleted. The worker must not ack what it could not commit, must answer /readyz
 * with 503 while it cannot write, must back off rather than exit or spin, and must store
 * everything once the space is back.
 */
const DISK_BYTES = 32 * 1024 * 1024;

export function databaseDiskFull(database: "sqlite" | "postgres"): void {
  let nats: NatsSetup;
  let system: System;
  let disk: SmallDisk | undefined;
  let tablespace: { drop(): Promise<void> } | undefined;
  const tablespaceName = `faults_disk_full_${process.pid}`;
  const id = database === "sqlite" ? "11" : "15";
  const where =
    database === "sqlite"
      ? "The SQLite file"
      : "The PostgreSQL database, in a tablespace of its own,";

  beforeAll(async () => {
    disk = mountSmallDisk(database, DISK_BYTES, database === "postgres" ? "postgres" : undefined);
    if (database === "postgres") tablespace = await createTablespace(tablespaceName, disk.dir);
  });
  // Runs after the system stopped and dropped its database (vitest runs afterAll hooks last
  // registered first).
  afterAll(async () => {
    await tablespace?.drop();
    disk?.unmount();
  });

  startForFile(
    { nodes: 1, sync: "always" },
    database === "sqlite"
      ? { database, sqliteDir: "/tmp/faults-tmpfs-sqlite" }
      : { database, pgTablespace: tablespaceName },
    (n, s) => {
      nats = n;
      system = s;
    },
  );

  it("database disk full mid-load: not ready, no ack without a commit, everything stored once space is back", async () => {
    const d = disk;
    const worker = system.workers[0];
    const port = worker === undefined ? undefined : workerHttpPort(worker);
    if (d === undefined || worker === undefined || port === undefined) {
      throw new Error("no disk, worker or worker port");
    }
    const hold = size(20_000, 10_000);
    const ratePerSecond = size(60, 40);
    const options = loadOptions(system, `s${id}`, {
      requests: Math.round(((5000 + hold + 10_000) / 1000) * ratePerSecond),
      ratePerSecond,
    });
    const load = startLoad(options);
    // The worker's readiness, every 250 ms, for the whole run.
    const readiness: { t: number; status: number }[] = [];
    const polling = new AbortController();
    const poller = (async () => {
      while (!polling.signal.aborted) {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`, {
          signal: AbortSignal.timeout(3000),
        }).catch(() => undefined);
        readiness.push({ t: load.now(), status: res?.status ?? 0 });
        await sleep(250);
      }
    })();

    await at(load, 5000);
    const rowsAtFill = await system.count();
    const filled = d.fill();
    const fullAt = load.now();
    await at(load, fullAt + hold);
    const rowsBeforeFree = await system.count();
    d.free();
    const freedAt = load.now();
    const grew = await system.rowsGrowBeyond(rowsBeforeFree, 60_000);
    await load.done;
    const counts = await finish(
      {
        id,
        slug: database === "sqlite" ? "database-disk-full" : "postgres-disk-full",
        title: `the database's disk full (${database === "sqlite" ? "SQLite" : "a PostgreSQL tablespace"} on a small tmpfs)`,
        fault:
          `${where} on a ${DISK_BYTES / 2 ** 20} MiB tmpfs; ${Math.round(fullAt / 1000)} s into the load a filler file takes the last ${(filled / 2 ** 20).toFixed(1)} MiB ` +
          `for ${hold / 1000} s, then is deleted.`,
      },
      system,
      nats,
      load,
      options,
      {
        recovery: [
          { what: "space back → worker storing again", ms: grew },
          {
            what: "disk full → /readyz 503",
            ms: (() => {
              const first = readiness.find((r) => r.t >= fullAt && r.status === 503);
              return first === undefined ? null : first.t - fullAt;
            })(),
          },
        ],
        extra: {
          "rows at the fill": rowsAtFill,
          "rows added while the disk was full": rowsBeforeFree - rowsAtFill,
          "worker /readyz answers while full (503 / 200)": `${readiness.filter((r) => r.t >= fullAt + 2000 && r.t < freedAt && r.status === 503).length} / ${readiness.filter((r) => r.t >= fullAt + 2000 && r.t < freedAt && r.status === 200).length}`,
          "worker exits": worker.process.exitCode === null ? 0 : 1,
        },
      },
    );
    polling.abort();
    await poller;
    expect(worker.process.exitCode, "the worker must not exit on a full disk").toBeNull();
    const notReady = readiness.filter((r) => r.t >= fullAt && r.t < freedAt && r.status === 503);
    expect(
      notReady.length,
      `/readyz answers 503 while the disk is full\n${system.logs()}`,
    ).toBeGreaterThan(0);
    const readyAfter = readiness.filter((r) => r.t > freedAt + 15_000);
    expect(
      readyAfter.every((r) => r.status === 200),
      "ready again once space is back",
    ).toBe(true);
    expect(counts.accepted).toBeGreaterThan(0);
  });
}
