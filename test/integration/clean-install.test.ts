import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../helpers/processes.ts";

/**
 * `npm install` on a fresh clone must leave the tree as it found it: a lock file that npm
 * rewrites on every install (an install script it records, the root's engines) shows up as a
 * change nobody made. CI runs the README's `npm install` just before `npm test`, so the first
 * check sees exactly what that install did.
 */
const run = promisify(execFile);

describe("a clean install", () => {
  it("leaves package.json and package-lock.json as committed", async () => {
    const { stdout } = await run(
      "git",
      ["status", "--porcelain", "--", "package.json", "package-lock.json"],
      {
        cwd: PROJECT_ROOT,
      },
    ).catch((err: unknown) => {
      throw new Error(`this test needs the project's git checkout: ${String(err)}`);
    });
    expect(stdout, "npm install changed these; commit what it wrote").toBe("");
  });

  it("has a lock file that npm resolves to itself, byte for byte", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lock-"));
    try {
      for (const file of ["package.json", "package-lock.json"]) {
        await copyFile(join(PROJECT_ROOT, file), join(dir, file));
      }
      await run(
        "npm",
        ["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"],
        {
          cwd: dir,
        },
      );
      const committed = await readFile(join(PROJECT_ROOT, "package-lock.json"), "utf8");
      expect(await readFile(join(dir, "package-lock.json"), "utf8")).toBe(committed);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
