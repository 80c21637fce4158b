import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ESLint } from "eslint";
import tseslint from "typescript-eslint";
import { afterEach, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../helpers/processes.ts";

/** The rules that keep the folders' boundaries, as `npm run lint` runs them. */
const BOUNDARY_RULES = new Set(["boundaries/no-import-cycle", "import-x/no-restricted-paths"]);

/**
 * The project's own ESLint configuration, boundary rules only: the type-aware rules are
 * `npm run lint`'s to run, and would cost a TypeScript program per lint here.
 */
function boundaryLinter(): ESLint {
  return new ESLint({
    cwd: PROJECT_ROOT,
    overrideConfig: [
      tseslint.configs.disableTypeChecked,
      // Directives for the rules left out are not unused.
      { linterOptions: { reportUnusedDisableDirectives: "off" } },
    ],
    ruleFilter: ({ ruleId }) => BOUNDARY_RULES.has(ruleId),
  });
}

const planted: string[] = [];

/** Writes a module into the tree, removed after the test whatever its outcome. */
async function plant(path: string, text: string): Promise<string> {
  const file = join(PROJECT_ROOT, path);
  planted.push(file);
  await writeFile(file, text);
  return file;
}

afterEach(async () => {
  await Promise.all(planted.splice(0).map((file) => rm(file, { force: true })));
});

/** The boundary rules a file breaks, with their messages. */
async function violations(file: string): Promise<{ ruleId: string | null; message: string }[]> {
  const [result] = await boundaryLinter().lintFiles([file]);
  return (result?.messages ?? []).map(({ ruleId, message }) => ({ ruleId, message }));
}

const TAG = `planted-${String(process.pid)}`;

describe("npm run lint keeps the boundaries", () => {
  it("finds an import cycle, even of type imports only", async () => {
    const a = await plant(
      `worker/${TAG}-a.ts`,
      `import type { B } from "./${TAG}-b.ts";\nexport type A = B | 1;\n`,
    );
    await plant(
      `worker/${TAG}-b.ts`,
      `import type { A } from "./${TAG}-a.ts";\nexport type B = A[] | 2;\n`,
    );
    expect(await violations(a)).toEqual([
      {
        ruleId: "boundaries/no-import-cycle",
        message: `Import cycle: worker/${TAG}-a.ts → worker/${TAG}-b.ts → worker/${TAG}-a.ts`,
      },
    ]);
  });

  it("finds a cycle through several files", async () => {
    const a = await plant(`shared/${TAG}-a.ts`, `export * from "./${TAG}-b.ts";\n`);
    await plant(`shared/${TAG}-b.ts`, `export * from "./${TAG}-c.ts";\n`);
    await plant(`shared/${TAG}-c.ts`, `export * from "./${TAG}-a.ts";\n`);
    const found = await violations(a);
    expect(found.map((v) => v.ruleId)).toEqual(["boundaries/no-import-cycle"]);
    expect(found[0]?.message).toContain(`shared/${TAG}-c.ts → shared/${TAG}-a.ts`);
  });

  it.each([
    [
      "the worker importing the edge",
      "worker",
      "../edge/http/errors.ts",
      "The worker never imports",
    ],
    ["shared/ importing the worker", "shared", "../worker/metric-store.ts", "shared/ holds only"],
    ["shared/ importing the edge", "shared", "../edge/http/errors.ts", "shared/ holds only"],
    ["a protocol importing another", "edge/influx", "../otlp/otlp-http.ts", "Protocol folders"],
    [
      "a handler importing a host",
      "edge/json",
      "../../functions/ingest.ts",
      "never imports a host",
    ],
    [
      "the edge importing the server",
      "edge/http",
      "../../server/router.ts",
      "never imports a host",
    ],
    [
      "a handler importing the Netlify entry point",
      "edge/json",
      "../http/function-runtime.ts",
      "Only functions/ use the Netlify entry point",
    ],
  ])("refuses %s, type imports included", async (_, folder, target, message) => {
    const file = await plant(
      `${folder}/${TAG}.ts`,
      `import type * as planted from "${target}";\nexport type Planted = typeof planted;\n`,
    );
    const found = await violations(file);
    expect(found.map((v) => v.ruleId)).toEqual(["import-x/no-restricted-paths"]);
    expect(found[0]?.message).toContain(message);
  });

  it("lets a protocol import edge/http, edge/publish and shared/", async () => {
    const file = await plant(
      `edge/otlp/${TAG}.ts`,
      [
        'import type { Handler } from "../http/answer-requests.ts";',
        'import type { Publisher } from "../publish/publisher.ts";',
        'import type { Config } from "../../shared/config.ts";',
        "export type Planted = [Handler, Publisher, Config];",
        "",
      ].join("\n"),
    );
    expect(await violations(file)).toEqual([]);
  });

  it("finds the product's folders within their boundaries", async () => {
    // The tests' and benchmarks' own files are `npm run lint`'s to check.
    const folders = ["edge", "shared", "worker", "server", "functions", "scripts"];
    const results = await boundaryLinter().lintFiles(folders);
    expect(results.length).toBeGreaterThan(80);
    const found = results.flatMap((r) =>
      r.messages.map((m) => `${r.filePath}:${String(m.line)} ${m.ruleId ?? ""} ${m.message}`),
    );
    expect(found).toEqual([]);
  });
});
