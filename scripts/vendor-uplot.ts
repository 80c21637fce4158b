/**
 * Copies uPlot's built files from node_modules into public/vendor/uplot/, where the live page
 * loads them: Netlify publishes public/ as it is (no build step), and `npm run serve` and
 * netlify dev serve the same folder. The copies are committed; `npm run vendor` refreshes them
 * after an upgrade of the `uplot` package, and a unit test fails while they differ.
 */
import { copyFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const UPLOT_FILES = ["uPlot.iife.min.js", "uPlot.min.css", "LICENSE"] as const;

const root = fileURLToPath(new URL("..", import.meta.url));

export function uplotSource(file: string): string {
  return file === "LICENSE"
    ? `${root}node_modules/uplot/LICENSE`
    : `${root}node_modules/uplot/dist/${file}`;
}

export function uplotCopy(file: string): string {
  return `${root}public/vendor/uplot/${file}`;
}

if (import.meta.main) {
  mkdirSync(`${root}public/vendor/uplot`, { recursive: true });
  for (const file of UPLOT_FILES) copyFileSync(uplotSource(file), uplotCopy(file));
  console.log(`vendor: copied ${UPLOT_FILES.join(", ")} into public/vendor/uplot/`);
}
