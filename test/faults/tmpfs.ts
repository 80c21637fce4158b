import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  openSync,
  closeSync,
  writeSync,
  rmSync,
  readFileSync,
  statfsSync,
} from "node:fs";
import { join } from "node:path";

/**
 * A small tmpfs for a scenario whose disk fills: mounted by the test (root), filled with a
 * filler file to the last byte while the system runs, and freed by deleting it. Mount points live
 * under /tmp/faults-tmpfs-*, so that one left by a crashed run is found and unmounted at start.
 */
export interface SmallDisk {
  readonly dir: string;
  /** Fills what is left with a file; resolves to the bytes it took. */
  fill(): number;
  /** Deletes the filler: the space is back. */
  free(): void;
  /** Bytes free now. */
  available(): number;
  unmount(): void;
}

const ROOT = "/tmp";
const PREFIX = "faults-tmpfs-";

function mounted(): string[] {
  return readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(`${ROOT}/${PREFIX}`));
}

function umount(dir: string): void {
  execFileSync("umount", ["-l", dir], { stdio: "ignore" });
  rmSync(dir, { recursive: true, force: true });
}

/** Unmounts the small disks a crashed run left (of this scenario's `name`). */
function removeLeftovers(name: string): void {
  for (const m of mounted()) if (m === `${ROOT}/${PREFIX}${name}`) umount(m);
}

/**
 * Mounts a tmpfs of `bytes` at /tmp/faults-tmpfs-`name`, owned by `owner` (a user name; default
 * root) with mode 700 when given, as PostgreSQL wants of a tablespace's folder.
 */
export function mountSmallDisk(name: string, bytes: number, owner?: string): SmallDisk {
  removeLeftovers(name);
  const dir = `${ROOT}/${PREFIX}${name}`;
  mkdirSync(dir, { recursive: true });
  const ownedBy =
    owner === undefined
      ? ""
      : `,uid=${execFileSync("id", ["-u", owner]).toString().trim()},gid=${execFileSync("id", ["-g", owner]).toString().trim()},mode=700`;
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${bytes}${ownedBy}`, "tmpfs", dir], {
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(
      `mount -t tmpfs -o size=${bytes} tmpfs ${dir} failed (${stderr ?? String(err)}): this scenario needs root`,
      { cause: err },
    );
  }
  const filler = join(dir, "filler");
  const available = () => {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  };
  return {
    dir,
    available,
    fill() {
      const fd = openSync(filler, "a");
      const chunk = Buffer.alloc(64 * 1024, 1);
      let written = 0;
      try {
        for (;;) written += writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
      } finally {
        closeSync(fd);
      }
      // The last partial chunk: tmpfs hands out whole pages.
      const fd2 = openSync(filler, "a");
      try {
        for (;;) written += writeSync(fd2, Buffer.alloc(4096, 1));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
      } finally {
        closeSync(fd2);
      }
      return written;
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      umount(dir);
    },
  };
}
