import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../helpers/processes.ts";

/**
 * The vendored .proto files are the single definition of the protobuf messages: what
 * `npm run generate:protos` makes from them must be exactly what is committed in shared/gen/.
 */
const GENERATED = join(PROJECT_ROOT, "shared", "gen", "proto");
const BIN = join(PROJECT_ROOT, "node_modules", ".bin");

let out: string;

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), "generated-protos-"));
  // `-o` puts the template's output directory (shared/gen) under `out`; the plugin
  // (protoc-gen-es) is found on PATH, as `npm run` finds it.
  await promisify(execFile)(join(BIN, "buf"), ["generate", "-o", out], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, PATH: `${BIN}:${process.env["PATH"] ?? ""}` },
  });
}, 60_000);

afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

describe("shared/gen/proto", () => {
  it("holds exactly the files that the vendored definitions generate", async () => {
    const fresh = await filesUnder(join(out, "shared", "gen", "proto"));
    expect(fresh.length).toBeGreaterThan(0);
    expect(await filesUnder(GENERATED)).toEqual(fresh);
  });

  it("holds each generated file as generated", async () => {
    for (const file of await filesUnder(join(out, "shared", "gen", "proto"))) {
      const fresh = await readFile(join(out, "shared", "gen", "proto", file), "utf8");
      const committed = await readFile(join(GENERATED, file), "utf8").catch(() => "(missing)");
      expect(committed, `shared/gen/${file} differs from what npm run generate:protos makes`).toBe(
        fresh,
      );
    }
  });
});
