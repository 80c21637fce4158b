import { execFileSync } from "node:child_process";

/**
 * A private network for the partition scenario: each nats-server in a network namespace of its
 * own (`flt-n1`…), joined to a bridge in one more namespace (`flt-sw`) by a veth pair, and the
 * test's host joined to the same bridge by one veth pair (`flt-host`, 10.231.0.1). Addresses
 * exist only on those links (10.231.0.0/24), nothing is routed, and the machine's own interfaces
 * are left alone. A partition is iptables DROP rules inside a node's namespace, so deleting the
 * namespaces removes every rule with them. Needs root, `ip` and `iptables` (Debian 12's 1.8.9,
 * the nf_tables backend, works inside a namespace; the `nft` command is not installed here).
 */
export interface PrivateNetwork {
  /** Each node's address, in order. */
  readonly nodeAddresses: readonly string[];
  /** The host's address on the private link. */
  readonly hostAddress: string;
  /** The command prefix that runs a program inside node `i`'s namespace. */
  readonly exec: (i: number) => string[];
  /** Makes the namespaces and links (first removing any a crashed run left). */
  create(): void;
  /** Drops every packet between node `i` and each of `peers` (addresses), both ways. */
  cut(i: number, peers: readonly string[]): void;
  /** Removes every rule `cut` added to node `i`. */
  heal(i: number): void;
  remove(): void;
}

const PREFIX = "flt-";
const SUBNET = "10.231.0";

function run(args: readonly string[]): string {
  const [cmd, ...rest] = args;
  if (cmd === undefined) throw new Error("no command");
  try {
    return execFileSync(cmd, rest, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stderr?: string };
    throw new Error(`${args.join(" ")} failed: ${e.stderr?.trim() ?? String(err)}`, {
      cause: err,
    });
  }
}

function inNs(ns: string, args: readonly string[]): string {
  return run(["ip", "netns", "exec", ns, ...args]);
}

/** Removes what a run that crashed left behind: its namespaces and the host's veth. */
export function removeLeftovers(): void {
  const list = run(["ip", "netns", "list"]);
  for (const line of list.split("\n")) {
    const ns = line.split(" ")[0];
    if (ns?.startsWith(PREFIX) === true) run(["ip", "netns", "del", ns]);
  }
  // The host end goes with the switch namespace's end, but the kernel frees a deleted namespace's
  // links asynchronously: the link may still be listed and be gone a moment later, so a failed
  // delete counts only if the link is still there. This also covers a run killed in between.
  const hostLink = `${PREFIX}host`;
  const hostLinkListed = () => run(["ip", "-br", "link"]).includes(hostLink);
  if (hostLinkListed()) {
    try {
      run(["ip", "link", "del", hostLink]);
    } catch (err) {
      if (hostLinkListed()) throw err;
    }
  }
}

/** The layout of a private network of `nodes` nodes; `create()` makes it, `remove()` undoes it. */
export function privateNetwork(nodes: number): PrivateNetwork {
  const nodeAddresses = Array.from({ length: nodes }, (_, i) => `${SUBNET}.${11 + i}`);
  const hostAddress = `${SUBNET}.1`;
  const ns = (i: number) => `${PREFIX}n${i + 1}`;
  const rules = new Map<number, string[][]>();
  return {
    nodeAddresses,
    hostAddress,
    exec: (i) => ["ip", "netns", "exec", ns(i)],
    create: () => {
      create(nodeAddresses, hostAddress, ns);
    },
    cut(i, peers) {
      const added = rules.get(i) ?? [];
      for (const peer of peers) {
        for (const rule of [
          ["INPUT", "-s", peer, "-j", "DROP"],
          ["OUTPUT", "-d", peer, "-j", "DROP"],
        ]) {
          inNs(ns(i), ["iptables", "-A", ...rule]);
          added.push(rule);
        }
      }
      rules.set(i, added);
    },
    heal(i) {
      for (const rule of rules.get(i) ?? []) inNs(ns(i), ["iptables", "-D", ...rule]);
      rules.delete(i);
    },
    remove: removeLeftovers,
  };
}

function create(
  nodeAddresses: readonly string[],
  hostAddress: string,
  ns: (i: number) => string,
): void {
  for (const tool of ["ip", "iptables"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      throw new Error(
        `${tool} is missing: the partition scenario needs it (apt-get install iproute2 iptables; scripts/test-tools.sh installs it as root)`,
      );
    }
  }
  removeLeftovers();
  const sw = `${PREFIX}sw`;
  try {
    run(["ip", "netns", "add", sw]);
    inNs(sw, ["ip", "link", "add", "br0", "type", "bridge"]);
    inNs(sw, ["ip", "link", "set", "br0", "up"]);
    const attach = (swEnd: string) => {
      inNs(sw, ["ip", "link", "set", swEnd, "master", "br0"]);
      inNs(sw, ["ip", "link", "set", swEnd, "up"]);
    };
    // The host's link: one end here, the other on the bridge.
    run(["ip", "link", "add", `${PREFIX}host`, "type", "veth", "peer", "name", "h-sw"]);
    run(["ip", "link", "set", "h-sw", "netns", sw]);
    attach("h-sw");
    run(["ip", "addr", "add", `${hostAddress}/24`, "dev", `${PREFIX}host`]);
    run(["ip", "link", "set", `${PREFIX}host`, "up"]);
    nodeAddresses.forEach((address, i) => {
      const link = `${PREFIX}n${i + 1}`;
      run(["ip", "netns", "add", ns(i)]);
      run(["ip", "link", "add", link, "type", "veth", "peer", "name", `n${i + 1}-sw`]);
      run(["ip", "link", "set", `n${i + 1}-sw`, "netns", sw]);
      attach(`n${i + 1}-sw`);
      run(["ip", "link", "set", link, "netns", ns(i)]);
      inNs(ns(i), ["ip", "link", "set", "lo", "up"]);
      inNs(ns(i), ["ip", "addr", "add", `${address}/24`, "dev", link]);
      inNs(ns(i), ["ip", "link", "set", link, "up"]);
    });
  } catch (err) {
    removeLeftovers();
    throw err;
  }
}
