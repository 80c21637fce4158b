import { execFileSync } from "node:child_process";

/**
 * Random packet loss on loopback for some TCP ports, both ways, with iptables' `statistic` match
 * (this kernel has no `netem`). Each rule carries the comment `faults-loss`, so that rules a
 * crashed run left are found and removed before new ones are added. Needs root and iptables.
 */
const TAG = "faults-loss";

function iptables(args: readonly string[]): string {
  try {
    return execFileSync("iptables", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stderr?: string; code?: string };
    if (e.code === "ENOENT") {
      throw new Error(
        "iptables is missing: the lossy-link scenario needs it (scripts/test-tools.sh installs it as root)",
        { cause: err },
      );
    }
    throw new Error(`iptables ${args.join(" ")} failed: ${e.stderr?.trim() ?? String(err)}`, {
      cause: err,
    });
  }
}

/** Deletes every rule tagged `faults-loss` from the INPUT chain. */
export function removeLossRules(): void {
  for (const line of iptables(["-S", "INPUT"]).split("\n")) {
    if (!line.startsWith("-A INPUT") || !line.includes(TAG)) continue;
    iptables(["-D", ...line.split(" ").slice(1)]);
  }
}

/** Drops `probability` of the packets to and from each of `ports` on loopback until the undo. */
export function dropRandomly(ports: readonly number[], probability: number): () => void {
  removeLossRules();
  for (const [port, direction] of ports.flatMap((p) => [
    [p, "--dport"] as const,
    [p, "--sport"] as const,
  ])) {
    iptables([
      "-A",
      "INPUT",
      "-i",
      "lo",
      "-p",
      "tcp",
      direction,
      String(port),
      "-m",
      "statistic",
      "--mode",
      "random",
      "--probability",
      String(probability),
      "-m",
      "comment",
      "--comment",
      TAG,
      "-j",
      "DROP",
    ]);
  }
  return removeLossRules;
}
