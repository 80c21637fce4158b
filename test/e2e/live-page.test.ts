import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RangeSeries } from "../../shared/query-protocol.ts";
import { startChromium, type Browser } from "../helpers/chromium.ts";
import { isolated } from "../helpers/isolated.ts";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.ts";
import { countPixels, nonBackgroundPixels } from "../helpers/png-pixels.ts";
import { PROJECT_ROOT, type Child } from "../helpers/processes.ts";
import { startServe, type ServeProcess } from "../helpers/serve.ts";
import { waitFor } from "../helpers/wait.ts";
import { workerFleet } from "../helpers/worker-fleet.ts";

/**
 * The live page in a real browser: metrics posted to `npm run serve` with a real worker, the page
 * opened in Debian's Chromium (headless, playwright-core), the chart drawn from the posted
 * values, the health panel's numbers checked against the API, screenshots inspected, and the
 * page kept readable when the worker stops. `UPDATE_SCREENSHOT=1` copies the screenshot to
 * docs/page.png.
 */
const WRITE_KEY = "page-write-key-0123456789";
const READ_KEY = "page-read-key-0123456789a";
const METRIC = "room.temperature";
/** The page's colours of its first two series (public/app.js), as RGB. */
const BLUE: [number, number, number] = [0x25, 0x63, 0xeb];
const RED: [number, number, number] = [0xdc, 0x26, 0x26];

let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dir: string;
let serve: ServeProcess;
let worker: Child;
let browser: Browser;
let page: Page;
const requestedUrls: string[] = [];
const fleet = workerFleet(() => jsm);
const now = Date.now();

/** Two rooms, a sample a minute over the last 40 minutes. */
const SAMPLES = Array.from({ length: 40 }, (_, i) => [
  {
    name: METRIC,
    value: 20 + Math.sin(i / 4) * 2,
    timestamp: now - (40 - i) * 60_000,
    tags: { room: "kitchen" },
  },
  {
    name: METRIC,
    value: 16 + (i % 7) / 2,
    timestamp: now - (40 - i) * 60_000,
    tags: { room: "cellar" },
  },
]).flat();

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await nc.jetstreamManager();
  dir = await mkdtemp(join(tmpdir(), "live-page-"));
  const setup = isolated(nats.url, "page", dir, {
    INGEST_API_KEYS: `${WRITE_KEY}@json, ${READ_KEY}@read`,
  });
  worker = fleet.start(setup.env);
  await fleet.ready(worker, setup.config);
  serve = await startServe(setup.env);
  const res = await fetch(`${serve.base}/api/v1/metrics`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${WRITE_KEY}` },
    body: JSON.stringify({ data: SAMPLES }),
  });
  expect(res.status).toBe(202);
  await waitFor("the samples stored", async () => {
    const range = await fetch(
      `${serve.base}/api/v1/query_range?name=${METRIC}&agg=count&step=3600&start=${now - 3_600_000}&end=${now}`,
      { headers: { authorization: `Bearer ${READ_KEY}` } },
    );
    if (range.status !== 200) return undefined;
    const { series } = (await range.json()) as { series: RangeSeries[] };
    const count = series.flatMap((s) => s.points).reduce((n, [, c]) => n + c, 0);
    return count === SAMPLES.length ? true : undefined;
  });
  browser = await startChromium();
  page = await browser.context.newPage();
  page.on("request", (req) => requestedUrls.push(req.url()));
}, 120_000);

afterAll(async () => {
  await browser.close();
  await serve.child.stop("SIGKILL");
  await fleet.killAll();
  await nc.close();
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
});

interface LivePage {
  range?: { series: RangeSeries[] };
  health?: { pipeline: Record<string, unknown> };
  draws: number;
}

// Code run in the page is written as text: this project's TypeScript has no DOM types.
const livePage = () => page.evaluate<LivePage>("window.livePage");

/**
 * Waits until `expression` is true in the page. Polled with page.evaluate, which runs through
 * the DevTools protocol: waitForFunction compiles its predicate in the page, which the page's
 * Content-Security-Policy (no eval) refuses, as it should.
 */
async function waitInPage(expression: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    expression,
    async () => ((await page.evaluate<unknown>(expression)) === true ? true : undefined),
    timeoutMs,
  );
}

async function healthPanel(): Promise<Record<string, string>> {
  return page.evaluate<Record<string, string>>(
    `Object.fromEntries([...document.querySelectorAll("[data-health]")].map((el) => [el.dataset.health, el.textContent]))`,
  );
}

describe("the live page", () => {
  it("asks for the key, then charts the posted values with both series drawn", async () => {
    await page.goto(`${serve.base}/`);
    // Without a key, the chart says why it is empty.
    await waitInPage(`document.querySelector("#chart-status").textContent.includes("read scope")`);
    await page.fill("#key", READ_KEY);
    await page.dispatchEvent("#key", "change");
    await waitInPage(`document.querySelector("#metric").value === ${JSON.stringify(METRIC)}`);
    await waitInPage(
      `window.livePage.range?.series.reduce((n, s) => n + s.points.length, 0) === ${SAMPLES.length}`,
    );
    // The page read back exactly what was posted, a sample in each of its 10 s buckets.
    const { range } = await livePage();
    const kitchen = range?.series.find((s) => s.tags["room"] === "kitchen");
    expect(kitchen?.points.map(([, v]) => v)).toEqual(
      SAMPLES.filter((s) => s.tags.room === "kitchen").map((s) => s.value),
    );
    // The key is kept in the tab, and never went into a URL.
    expect(await page.evaluate("sessionStorage.length")).toBe(1);
    expect(requestedUrls.filter((u) => u.includes(READ_KEY))).toEqual([]);

    const shot = await page.locator("#chart").screenshot();
    const file = join(dir, "chart.png");
    await writeFile(file, shot);
    expect(nonBackgroundPixels(shot), "the chart is not blank").toBeGreaterThan(5000);
    expect(countPixels(shot, BLUE), "the first series' line").toBeGreaterThan(300);
    expect(countPixels(shot, RED), "the second series' line").toBeGreaterThan(300);
  });

  it("paints its first chart within a second of loading", async () => {
    await page.reload();
    await waitInPage(`performance.getEntriesByName("chart-drawn").length > 0`);
    const paint = await page.evaluate<{ chart: number; firstContentful: number }>(
      `({ chart: performance.getEntriesByName("chart-drawn")[0].startTime, firstContentful: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN })`,
    );
    console.log(
      `live page: first contentful paint ${paint.firstContentful.toFixed(0)} ms, chart drawn ${paint.chart.toFixed(0)} ms`,
    );
    expect(paint.chart).toBeLessThan(1000);
  });

  it("shows the pipeline's numbers as the health API gives them", async () => {
    await waitInPage(`window.livePage.health !== undefined`);
    const api = (await (await fetch(`${serve.base}/api/v1/health`)).json()) as {
      pipeline: {
        acceptedMessages: number;
        consumer: { pending: number; ackPending: number };
        deadLetters: number;
        workers: { answering: number; metricsStored: number };
      };
    };
    const panel = await healthPanel();
    expect(panel).toMatchObject({
      acceptedMessages: String(api.pipeline.acceptedMessages),
      pending: String(api.pipeline.consumer.pending),
      ackPending: String(api.pipeline.consumer.ackPending),
      deadLetters: String(api.pipeline.deadLetters),
      workers: String(api.pipeline.workers.answering),
      metricsStored: String(api.pipeline.workers.metricsStored),
    });
    expect(api.pipeline).toMatchObject({
      acceptedMessages: 1,
      workers: { answering: 1, metricsStored: SAMPLES.length },
    });
    const shot = await page.screenshot({ fullPage: true });
    await writeFile(join(dir, "page.png"), shot);
    if (process.env["UPDATE_SCREENSHOT"] === "1") {
      await copyFile(join(dir, "page.png"), join(PROJECT_ROOT, "docs", "page.png"));
    }
  });

  it("says so when no worker answers, keeping the last chart and the health panel", async () => {
    await worker.stop("SIGTERM");
    fleet.forget(worker);
    await waitInPage(
      `document.querySelector("#chart-status").textContent.includes("No worker is answering")`,
      15_000,
    );
    expect(await page.locator("#chart-panel.degraded").count()).toBe(1);
    expect(await page.locator("#health-state").textContent()).toBe("degraded");
    expect((await healthPanel())["workers"]).toBe("0");
    const shot = await page.locator("#chart").screenshot();
    expect(nonBackgroundPixels(shot), "the last chart stays").toBeGreaterThan(5000);
  });
});
