import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../helpers/processes.ts";

/** The project's own TypeScript, as tsconfig.json includes it. */
const SOURCE_DIRS = ["functions", "shared", "server", "worker", "scripts", "test", "bench"];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => join(entry.parentPath, entry.name));
}

/**
 * The relative imports in a file's text: static and dynamic, type-only ones included. A type
 * import costs nothing at run time, but a cycle of them still ties modules into one unit that
 * can only be read, tested and changed together.
 */
function relativeImports(text: string): string[] {
  const { importedFiles } = ts.preProcessFile(text, true, true);
  return importedFiles.map((imported) => imported.fileName).filter((name) => name.startsWith("."));
}

/** Every cycle met by a depth-first walk, each as the chain of files that closes it. */
function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const finished = new Set<string>();
  const path: string[] = [];
  const cycles: string[][] = [];
  const visit = (file: string) => {
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      const onPath = path.indexOf(next);
      if (onPath >= 0) cycles.push([...path.slice(onPath), next]);
      else if (!finished.has(next)) visit(next);
    }
    path.pop();
    finished.add(file);
  };
  for (const file of graph.keys()) if (!finished.has(file)) visit(file);
  return cycles;
}

describe("imports", () => {
  it("form no cycle, type imports included", () => {
    const files = SOURCE_DIRS.flatMap((dir) => sourceFiles(join(PROJECT_ROOT, dir)));
    expect(files.length).toBeGreaterThan(50);
    const graph = new Map(
      files.map((file) => [
        file,
        relativeImports(readFileSync(file, "utf8")).map((name) => resolve(dirname(file), name)),
      ]),
    );
    const named = findCycles(graph).map((cycle) =>
      cycle.map((file) => relative(PROJECT_ROOT, file)).join(" → "),
    );
    expect(named).toEqual([]);
  });

  it("are read whatever their kind: type-only, re-exported, dynamic", () => {
    const text = [
      'import type { MetricStore } from "./metric-store.ts";',
      'export type { MetricRow } from "./metric-rows.ts";',
      'const { openSqliteStore } = await import("./sqlite-store.ts");',
      'import pg from "pg";',
    ].join("\n");
    expect(relativeImports(text)).toEqual([
      "./metric-store.ts",
      "./metric-rows.ts",
      "./sqlite-store.ts",
    ]);
  });

  it("are walked far enough to find a cycle through several files", () => {
    const graph = new Map([
      ["a", ["b"]],
      ["b", ["c"]],
      ["c", ["a"]],
      ["d", ["a"]],
    ]);
    expect(findCycles(graph)).toEqual([["a", "b", "c", "a"]]);
  });
});
