/**
 * An ESLint rule: no import cycles among the project's own modules, type-only imports included.
 * import-x/no-cycle skips type imports by design; but a cycle of them still ties modules into
 * one unit that can only be read, tested and changed together (a store contract borrowing its
 * options type from one of its stores, say), so the project checks them too.
 *
 * Each relative import of the file being linted is followed through the files it imports, read
 * from disk (static, dynamic, re-exports and type-only alike); an import from which the walk
 * comes back to the file is reported with the chain that closes the cycle.
 */
import { readFileSync, statSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import type { Rule } from "eslint";
import ts from "typescript";

/**
 * The relative imports in a module's text, whatever their kind, resolved to files. A file's
 * imports are read again when it changes, so one process may lint a changing tree.
 */
function relativeImports(file: string, text: string): string[] {
  const { importedFiles } = ts.preProcessFile(text, true, true);
  return importedFiles
    .map((imported) => imported.fileName)
    .filter((name) => name.startsWith("."))
    .map((name) => resolve(dirname(file), name));
}

const cache = new Map<string, { mtimeMs: number; imports: string[] }>();

function importsOf(file: string): string[] {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(file).mtimeMs;
  } catch {
    return []; // not a file of the tree (a missing import is tsc's to report)
  }
  const cached = cache.get(file);
  if (cached?.mtimeMs === mtimeMs) return cached.imports;
  const imports = relativeImports(file, readFileSync(file, "utf8"));
  cache.set(file, { mtimeMs, imports });
  return imports;
}

/** The chain of files from `start` back to `target`, if there is one (breadth first: shortest). */
function pathBack(start: string, target: string): string[] | undefined {
  const cameFrom = new Map<string, string | undefined>([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.shift() as string;
    for (const next of importsOf(file)) {
      if (next === target) {
        const chain = [file];
        for (let at = cameFrom.get(file); at !== undefined; at = cameFrom.get(at)) chain.push(at);
        return chain.reverse();
      }
      if (!cameFrom.has(next)) {
        cameFrom.set(next, file);
        queue.push(next);
      }
    }
  }
  return undefined;
}

export const noImportCycle: Rule.RuleModule = {
  meta: {
    type: "problem",
    docs: { description: "no import cycles among the project's modules, type imports included" },
    messages: { cycle: "Import cycle: {{chain}}" },
    schema: [],
  },
  create(context) {
    const file = context.physicalFilename;
    if (!file.endsWith(".ts")) return {};
    const root = context.cwd;
    const name = (f: string) => relative(root, f);
    // The file's own imports from the text being linted, which may not be on disk yet.
    const ownImports = new Set(relativeImports(file, context.sourceCode.text));
    const check = (node: Rule.Node, source: unknown) => {
      if (typeof source !== "string" || !source.startsWith(".")) return;
      const imported = resolve(dirname(file), source);
      if (!ownImports.has(imported)) return;
      const chain = imported === file ? [] : pathBack(imported, file);
      if (chain === undefined) return;
      context.report({
        node,
        messageId: "cycle",
        data: { chain: [file, ...chain, file].map(name).join(" → ") },
      });
    };
    return {
      ImportDeclaration(node) {
        check(node, node.source.value);
      },
      ExportNamedDeclaration(node) {
        check(node, node.source?.value);
      },
      ExportAllDeclaration(node) {
        check(node, node.source.value);
      },
      ImportExpression(node) {
        check(node, node.source.type === "Literal" ? node.source.value : undefined);
      },
    };
  },
};
