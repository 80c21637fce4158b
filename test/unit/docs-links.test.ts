import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import {
  anchorOf,
  currentTableOfContents,
  headings,
  proseLines,
  tableOfContents,
} from "../../scripts/markdown-toc.ts";
import { PROJECT_ROOT } from "../helpers/processes.ts";

/** The README is a front page; the reference lives in docs/, and every link there must lead on. */
const README = join(PROJECT_ROOT, "README.md");
const DOCS = join(PROJECT_ROOT, "docs");
const documents = [
  README,
  ...readdirSync(DOCS)
    .filter((f) => f.endsWith(".md"))
    .map((f) => join(DOCS, f)),
];

/** Every link target of `markdown` outside code: inline links, images and reference definitions. */
function linkTargets(markdown: string): string[] {
  const targets: string[] = [];
  for (const line of proseLines(markdown)) {
    const prose = line.replace(/`[^`]*`/g, "");
    for (const m of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      if (m[1] !== undefined) targets.push(m[1]);
    }
    const definition = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(prose)?.[1];
    if (definition !== undefined) targets.push(definition);
  }
  return targets;
}

/** What is wrong with a relative link from `document` to `target`, or undefined when it leads on. */
function brokenLink(document: string, target: string): string | undefined {
  const hash = target.indexOf("#");
  const path = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
  const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const file = path === "" ? document : join(dirname(document), path);
  if (!existsSync(file)) return `${target}: no file ${relative(PROJECT_ROOT, file)}`;
  if (anchor === undefined) return undefined;
  if (statSync(file).isDirectory() || !file.endsWith(".md")) {
    return `${target}: an anchor into a file that is not Markdown`;
  }
  const anchors = headings(readFileSync(file, "utf8")).map((h) => h.anchor);
  return anchors.includes(anchor) ? undefined : `${target}: no heading #${anchor}`;
}

describe("the README", () => {
  it("is a front page of at most 250 lines", () => {
    const lines = readFileSync(README, "utf8").trimEnd().split("\n").length;
    expect(lines).toBeLessThanOrEqual(250);
  });

  it("links every document in docs/", () => {
    const linked = new Set(
      linkTargets(readFileSync(README, "utf8")).map((t) => t.split("#")[0] ?? ""),
    );
    const unlinked = documents
      .filter((d) => d !== README)
      .map((d) => relative(PROJECT_ROOT, d))
      .filter((d) => !linked.has(d));
    expect(unlinked).toEqual([]);
  });
});

describe.each(documents.map((d) => [relative(PROJECT_ROOT, d), d]))("%s", (_name, document) => {
  const markdown = readFileSync(document, "utf8");

  it("has links that find their file and heading", () => {
    const targets = linkTargets(markdown).filter((t) => !/^[a-z][a-z+.-]*:/i.test(t));
    const broken = targets.map((t) => brokenLink(document, t)).filter((b) => b !== undefined);
    expect(broken).toEqual([]);
  });

  it("has no table cell over 200 characters", () => {
    const long = proseLines(markdown)
      .filter((l) => l.startsWith("|"))
      .flatMap((l) => l.split("|").map((c) => c.trim()))
      .filter((c) => c.length > 200);
    expect(long).toEqual([]);
  });

  if (document !== README) {
    it("opens with a table of contents that matches its headings", () => {
      const contents = currentTableOfContents(markdown);
      expect(contents, "a <!-- toc --> … <!-- /toc --> block").toBeDefined();
      expect(contents, "npm run docs:toc rewrites it").toBe(tableOfContents(markdown));
      expect(contents, "it lists at least one heading").not.toBe("");
    });
  }
});

describe("heading anchors", () => {
  it("are GitHub's", () => {
    expect(anchorOf("`POST /api/v2/write` — InfluxDB line protocol")).toBe(
      "post-apiv2write--influxdb-line-protocol",
    );
    expect(anchorOf("Dead letters: `npm run dlq`")).toBe("dead-letters-npm-run-dlq");
    expect(anchorOf("Self-hosted server (`npm run serve`)")).toBe(
      "self-hosted-server-npm-run-serve",
    );
    expect(anchorOf("3. worker SIGKILLed mid-batch and restarted, twice")).toBe(
      "3-worker-sigkilled-mid-batch-and-restarted-twice",
    );
    expect(anchorOf("stream full (max_bytes reached, discard: new)")).toBe(
      "stream-full-max_bytes-reached-discard-new",
    );
    expect(anchorOf("Zürich [weather](https://example.com) *now*")).toBe("zürich-weather-now");
  });

  it("number repeated headings as GitHub does", () => {
    const anchors = headings("# A\n\n## Responses\n\n```\n## not a heading\n```\n\n## Responses\n");
    expect(anchors.map((h) => h.anchor)).toEqual(["a", "responses", "responses-1"]);
  });
});
