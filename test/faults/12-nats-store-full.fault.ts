import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { firstSuccessAfter, startLoad } from "./load.ts";
import type { NatsSetup } from "./nats-nodes.ts";
import { at, finish, loadOptions, size, startForFile } from "./scenario.ts";
import type { System } from "./system.ts";
import { mountSmallDisk, type SmallDisk } from "./tmpfs.ts";

/**
 * 12. JetStream's store fills: nats-server's store directory on a small tmpfs that a filler file
 * takes to the last byte mid-load, then deleted. The edge must refuse with a documented 503 what
 * JetStream cannot store, lose nothing it acknowledged, and accept again once space is freed.
 */
let nats: NatsSetup;
let system: System;
let disk: SmallDisk | undefined;
const DISK_BYTES = 64 * 1024 * 1024;

beforeAll(() => {
  disk = mountSmallDisk("jetstream", DISK_BYTES);
});
afterAll(() => {
  disk?.unmount();
});

startForFile(
  {
    nodes: 1,
    sync: "always",
    storeDir: "/tmp/faults-tmpfs-jetstream",
    // More than the disk holds, as on a disk shared with other files: the disk fills first.
    jetstream: "max_file_store: 4G",
  },
  { database: "sqlite" },
  (n, s) => {
    nats = n;
    system = s;
  },
);

it("JetStream's store full mid-load: 503 with a documented code, nothing lost, resumes once freed", async () => {
  const d = disk;
  if (d === undefined) throw new Error("no disk");
  const hold = size(20_000, 10_000);
  const ratePerSecond = size(60, 40);
  const options = loadOptions(system, "s12", {
    requests: Math.round(((5000 + hold + 10_000) / 1000) * ratePerSecond),
    ratePerSecond,
    retryBudgetMs: 90_000,
  });
  const load = startLoad(options);
  await at(load, 5000);
  let filled = d.fill();
  const fullAt = load.now();
  // The worker's acks free the blocks the stream no longer needs: the filler takes them too, so
  // that the disk stays full.
  while (load.now() < fullAt + hold) {
    await sleep(10);
    filled += d.fill();
  }
  d.free();
  const freedAt = load.now();
  await load.done;
  const whileFull = load.records
    .flatMap((r) => r.attempts)
    .filter((a) => a.start >= fullAt + 1000 && a.start < freedAt);
  const byAnswer: Record<string, number> = {};
  for (const a of whileFull) {
    const label = `${String(a.status)}${a.code === undefined ? "" : ` ${a.code}`}`;
    byAnswer[label] = (byAnswer[label] ?? 0) + 1;
  }
  const firstOk = firstSuccessAfter(load.records, freedAt);
  const counts = await finish(
    {
      id: "12",
      slug: "nats-store-full",
      title: "JetStream's store full (store directory on a small tmpfs)",
      fault:
        `nats-server's store directory on a ${DISK_BYTES / 2 ** 20} MiB tmpfs; ${Math.round(fullAt / 1000)} s into the load a filler file takes the last ${(filled / 2 ** 20).toFixed(1)} MiB, ` +
        `and what the worker's acks free, for ${hold / 1000} s, then is deleted.`,
    },
    system,
    nats,
    load,
    options,
    {
      recovery: [
        { what: "space freed → first 2xx", ms: firstOk === undefined ? null : firstOk - freedAt },
      ],
      extra: {
        "answers to requests sent while the store was full": Object.entries(byAnswer)
          .map(([k, v]) => `${k}: ${v}`)
          .join(", "),
      },
    },
  );
  expect(counts.accepted).toBeGreaterThan(0);
  expect(byAnswer["503 storage_full"], "a full store answers 503 storage_full").toBeGreaterThan(0);
  expect(byAnswer["503 stream_full"], "a full disk is not a full stream").toBeUndefined();
  expect(firstOk, "accepted again once space is freed").toBeDefined();
});
