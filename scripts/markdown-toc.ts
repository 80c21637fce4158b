/**
 * Tables of contents for the documents in docs/, with the anchors GitHub gives headings. A
 * document's contents sit between `<!-- toc -->` and `<!-- /toc -->` (invisible once rendered)
 * and list its `##` and `###` headings. `npm run docs:toc` rewrites them after a heading changed;
 * the generators of docs/benchmarks.md and docs/reliability.md add them; a unit test checks that
 * every document's contents match its headings and that every link finds its file and anchor.
 */
import { readFileSync, writeFileSync } from "node:fs";

export interface Heading {
  readonly level: number;
  readonly text: string;
  readonly anchor: string;
}

const TOC_START = "<!-- toc -->";
const TOC_END = "<!-- /toc -->";

/**
 * GitHub's anchor for a heading's text: the rendered text (no backticks, emphasis or link
 * syntax) in lower case, without punctuation other than `-` and `_`, each space a hyphen.
 */
export function anchorOf(text: string): string {
  return text
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/[`*]/g, "")
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");
}

/** The lines of `markdown` outside fenced code blocks, where headings and links mean something. */
export function proseLines(markdown: string): string[] {
  const prose: string[] = [];
  let fence: string | undefined;
  for (const line of markdown.split("\n")) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker !== undefined && (fence === undefined || marker.startsWith(fence))) {
      fence = fence === undefined ? marker : undefined;
      continue;
    }
    if (fence === undefined) prose.push(line);
  }
  return prose;
}

/** Every heading of `markdown`, in order, with its anchor (repeated texts get `-1`, `-2`, …). */
export function headings(markdown: string): Heading[] {
  const seen = new Map<string, number>();
  const found: Heading[] = [];
  for (const line of proseLines(markdown)) {
    const match = /^(#{1,6})\s+(.*?)\s*$/.exec(line);
    if (match?.[1] === undefined || match[2] === undefined) continue;
    const base = anchorOf(match[2]);
    const repeats = seen.get(base) ?? 0;
    seen.set(base, repeats + 1);
    found.push({
      level: match[1].length,
      text: match[2],
      anchor: repeats === 0 ? base : `${base}-${repeats}`,
    });
  }
  return found;
}

/** The contents list of `markdown`: its `##` and `###` headings as links, nested by level. */
export function tableOfContents(markdown: string): string {
  return headings(markdown)
    .filter((h) => h.level === 2 || h.level === 3)
    .map((h) => `${"  ".repeat(h.level - 2)}- [${h.text}](#${h.anchor})`)
    .join("\n");
}

/** The contents block as it stands in `markdown`, or undefined when it has none. */
export function currentTableOfContents(markdown: string): string | undefined {
  const start = markdown.indexOf(TOC_START);
  const end = markdown.indexOf(TOC_END);
  if (start < 0 || end < start) return undefined;
  return markdown.slice(start + TOC_START.length, end).trim();
}

/**
 * `markdown` with its contents block made from its headings: replaced where it stands, else put
 * before the first `##` heading.
 */
export function withTableOfContents(markdown: string): string {
  const start = markdown.indexOf(TOC_START);
  const end = markdown.indexOf(TOC_END);
  const block = `${TOC_START}\n\n${tableOfContents(markdown)}\n\n${TOC_END}`;
  if (start >= 0 && end > start) {
    return markdown.slice(0, start) + block + markdown.slice(end + TOC_END.length);
  }
  const first = /^## /m.exec(markdown);
  if (first === null) return markdown;
  return `${markdown.slice(0, first.index)}${block}\n\n${markdown.slice(first.index)}`;
}

if (import.meta.main) {
  for (const file of process.argv.slice(2)) {
    const text = readFileSync(file, "utf8");
    const updated = withTableOfContents(text);
    if (updated !== text) {
      writeFileSync(file, updated);
      console.log(`updated ${file}`);
    }
  }
}
