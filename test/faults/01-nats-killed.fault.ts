import { afterEach, it } from "vitest";
import { firstSuccessAfter, startLoad } from "./load.ts";
import { startNats, type NatsSetup, type SyncSetting } from "./nats-nodes.ts";
import { at, finish, loadOptions, size } from "./scenario.ts";
import { startSystem, type System } from "./system.ts";

/**
 * 1. nats-server SIGKILLed mid-load and restarted on the same store: with the durable setting
 * (`sync_interval: always`), and again with the server's default, since a process crash alone
 * should lose nothing acknowledged with either.
 */
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function killAndRestart(sync: SyncSetting, id: string): Promise<void> {
  const nats: NatsSetup = await startNats({ nodes: 1, sync });
  cleanups.push(() => nats.stop());
  const system: System = await startSystem({
    nats,
    database: "sqlite",
    env: { PUBLISH_TIMEOUT_MS: "2000" },
  });
  cleanups.push(() => system.stop());

  const options = loadOptions(system, `s${id}`);
  const load = startLoad(options);
  const killAt = size(6000, 3000);
  const downMs = size(3000, 2000);
  await at(load, killAt);
  const node = nats.nodes[0];
  if (node === undefined) throw new Error("no node");
  await node.kill();
  const killedAt = load.now();
  await at(load, killedAt + downMs);
  await node.restart();
  const restartedAt = load.now();
  await load.done;
  const first = firstSuccessAfter(load.records, restartedAt);
  await finish(
    {
      id,
      slug: sync === "always" ? "nats-killed" : "nats-killed-default-sync",
      title: `nats-server SIGKILLed mid-load, restarted on the same store (sync_interval: ${sync})`,
      fault: `SIGKILL of the only nats-server ${killAt / 1000} s into the load; restarted ${downMs / 1000} s later on the same port and store.`,
    },
    system,
    nats,
    load,
    options,
    {
      recovery: [
        { what: "restart → first 2xx", ms: first === undefined ? null : first - restartedAt },
        { what: "SIGKILL → first 2xx", ms: first === undefined ? null : first - killedAt },
      ],
    },
  );
}

it("nats-server SIGKILLed and restarted, sync_interval: always: nothing lost, nothing twice", () =>
  killAndRestart("always", "1"));

it("nats-server SIGKILLed and restarted, default sync: nothing lost, nothing twice", () =>
  killAndRestart("default", "1b"));
