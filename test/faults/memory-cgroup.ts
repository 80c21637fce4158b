import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A cgroup v1 memory group for one scenario's worker, which `prefix` starts inside it (this
 * kernel refuses `move_charge_at_immigrate`, so a process moved in later would be charged only
 * for what it allocates afterwards); the kernel's OOM killer kills it past
 * `memory.limit_in_bytes`. A group a crashed run left is emptied (its processes moved back to
 * the root group) and removed at start.
 */
export interface MemoryGroup {
  readonly path: string;
  /** A command prefix that runs a program inside the group. */
  readonly prefix: readonly string[];
  setLimit(bytes: number): void;
  /** Bytes charged to the group now, and its peak since the last `resetPeak`. */
  usage(): { now: number; peak: number };
  resetPeak(): void;
  /** How many times the kernel's OOM killer acted in the group. */
  oomKills(): number;
  remove(): void;
}

const ROOT = "/sys/fs/cgroup/memory";

function removeGroup(path: string): void {
  if (!existsSync(path)) return;
  for (const pid of readFileSync(join(path, "cgroup.procs"), "utf8").split("\n")) {
    if (pid !== "") writeFileSync(join(ROOT, "cgroup.procs"), pid);
  }
  rmdirSync(path);
}

export function memoryGroup(name: string): MemoryGroup {
  if (!existsSync(join(ROOT, "memory.limit_in_bytes"))) {
    throw new Error(
      `${ROOT} is not a cgroup v1 memory hierarchy: the memory-limit scenario needs one (and root)`,
    );
  }
  const path = join(ROOT, name);
  removeGroup(path);
  mkdirSync(path);
  const read = (file: string) => Number(readFileSync(join(path, file), "utf8").trim());
  return {
    path,
    prefix: ["sh", "-c", `echo $$ > ${join(path, "cgroup.procs")} && exec "$@"`, "sh"],
    setLimit(bytes) {
      writeFileSync(join(path, "memory.limit_in_bytes"), String(bytes));
    },
    usage: () => ({ now: read("memory.usage_in_bytes"), peak: read("memory.max_usage_in_bytes") }),
    resetPeak() {
      writeFileSync(join(path, "memory.max_usage_in_bytes"), "0");
    },
    oomKills() {
      const m = /^oom_kill (\d+)/m.exec(readFileSync(join(path, "memory.oom_control"), "utf8"));
      return Number(m?.[1] ?? 0);
    },
    remove() {
      removeGroup(path);
    },
  };
}
