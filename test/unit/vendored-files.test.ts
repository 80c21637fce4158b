import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { UPLOT_FILES, uplotCopy, uplotSource } from "../../scripts/vendor-uplot.ts";

/** The live page's copy of uPlot is the installed package's: `npm run vendor` refreshes it. */
describe("public/vendor/uplot", () => {
  it.each(UPLOT_FILES)("%s is the installed uplot package's", (file) => {
    expect(readFileSync(uplotCopy(file)).equals(readFileSync(uplotSource(file))), file).toBe(true);
  });
});
