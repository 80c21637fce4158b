import { describe, expect, it } from "vitest";
import { createStaticFiles } from "../../server/static-files.ts";

/** The live page's files as `npm run serve` sends them, and nothing outside public/. */
const serve = createStaticFiles();
const get = (path: string, method = "GET") =>
  serve(new Request(`http://localhost${path}`, { method }));

describe("the static files of npm run serve", () => {
  it("sends / as index.html, with the page's security headers", async () => {
    const res = await get("/");
    expect(res?.status).toBe(200);
    expect(res?.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res?.headers.get("content-security-policy")).toMatch(/default-src 'self'/);
    expect(await res?.text()).toMatch(/<title>Metrics ingestion/);
  });

  it("sends the script, the styles and uPlot with their types, and HEAD without a body", async () => {
    expect((await get("/app.js"))?.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect((await get("/style.css"))?.headers.get("content-type")).toMatch(/^text\/css/);
    expect((await get("/vendor/uplot/uPlot.iife.min.js"))?.status).toBe(200);
    const head = await get("/", "HEAD");
    expect(head?.status).toBe(200);
    expect(await head?.text()).toBe("");
  });

  it.each([
    "/../package.json",
    "/%2e%2e/package.json",
    "/..%2fpackage.json",
    "/missing.html",
    "/x.ts",
  ])("leaves %s to the router's 404", async (path) => {
    expect(await get(path)).toBeUndefined();
  });

  it("takes GET and HEAD only", async () => {
    expect(await get("/", "POST")).toBeUndefined();
  });
});
