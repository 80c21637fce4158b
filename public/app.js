// The live page: a chart of one metric over the last hour and the pipeline's health, both
// refreshed every few seconds. It reads only the public API (GET /api/v1/series,
// /api/v1/query_range, /api/v1/health). The key stays in this tab's sessionStorage and is sent
// as a header, never in a URL.
"use strict";

const REFRESH_MS = 5000;
const RANGE_MS = 3_600_000;
const STEP_SECONDS = 10;
const KEY_STORAGE = "metrics-ingest.read-key";
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];

const $ = (id) => document.getElementById(id);
const state = { plot: undefined, drawn: false, previousHealth: undefined, seriesByName: new Map() };

/** What the browser test reads: the last answers, as the page used them. */
window.livePage = { range: undefined, health: undefined, draws: 0 };

function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return key ? { authorization: `Bearer ${key}` } : {};
}

async function getJson(path, withKey) {
  const res = await fetch(path, { headers: withKey ? authHeaders() : {}, cache: "no-store" });
  let body;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  return { status: res.status, body };
}

/** A refusal as one line: its code and message, or the status when the body says nothing. */
function describeError(answer) {
  const error = answer.body && answer.body.error;
  if (!error) return `HTTP ${answer.status}`;
  if (error.code === "unauthorized" || error.code === "insufficient_scope") {
    return `${error.message} Enter a key with the read scope above.`;
  }
  return `${error.message} (${error.code})`;
}

const tagText = (tags) =>
  Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ") || "(no tags)";

function setOptions(select, options, keep) {
  const wanted =
    keep !== undefined && options.some((o) => o.value === keep) ? keep : options[0]?.value;
  select.replaceChildren(
    ...options.map((o) => {
      const option = document.createElement("option");
      option.value = o.value;
      option.textContent = o.label;
      return option;
    }),
  );
  if (wanted !== undefined) select.value = wanted;
}

async function refreshSeries() {
  const answer = await getJson("/api/v1/series", true);
  if (answer.status !== 200) return answer;
  const byName = new Map();
  for (const s of answer.body.series) {
    if (s.name === null) continue;
    if (!byName.has(s.name)) byName.set(s.name, []);
    byName.get(s.name).push(s.tags);
  }
  state.seriesByName = byName;
  const metric = $("metric");
  setOptions(
    metric,
    [...byName.keys()].map((name) => ({ value: name, label: name })),
    metric.value || undefined,
  );
  fillSeriesChoice();
  return answer;
}

function fillSeriesChoice() {
  const series = $("series");
  const tagSets = state.seriesByName.get($("metric").value) ?? [];
  setOptions(
    series,
    [
      { value: "", label: "(all series)" },
      ...tagSets.map((tags) => ({ value: JSON.stringify(tags), label: tagText(tags) })),
    ],
    series.value,
  );
}

function showChartProblem(message) {
  $("chart-panel").classList.add("degraded");
  $("chart-status").classList.add("degraded");
  $("chart-status").textContent = message;
  if (!state.plot) {
    const note = document.createElement("p");
    note.className = "chart-placeholder";
    note.textContent = message;
    $("chart").replaceChildren(note);
  }
}

function rangePath(name) {
  const end = Date.now();
  const params = new URLSearchParams({
    name,
    start: String(end - RANGE_MS),
    end: String(end),
    step: String(STEP_SECONDS),
    agg: $("agg").value,
  });
  const chosen = $("series").value;
  if (chosen) for (const [k, v] of Object.entries(JSON.parse(chosen))) params.set(`tag.${k}`, v);
  return `/api/v1/query_range?${params}`;
}

/** uPlot wants one x array and one y array per series, aligned: missing buckets are null. */
function chartData(series) {
  const times = [...new Set(series.flatMap((s) => s.points.map(([t]) => t)))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const ys = series.map((s) => {
    const y = new Array(times.length).fill(null);
    for (const [t, v] of s.points) y[index.get(t)] = v;
    return y;
  });
  return [times.map((t) => t / 1000), ...ys];
}

function draw(name, series) {
  const data = chartData(series);
  const el = $("chart");
  const labels = series.map((s) => tagText(s.tags)).join("|");
  // A new plot when the series change; otherwise only new data, which keeps the zoom.
  if (!state.plot || state.plotKey !== `${name}|${labels}`) {
    state.plot?.destroy();
    el.replaceChildren();
    state.plot = new uPlot(
      {
        title: name,
        width: Math.max(300, el.clientWidth),
        height: 360,
        scales: { x: { time: true } },
        series: [
          {},
          ...series.map((s, i) => ({
            label: tagText(s.tags),
            stroke: COLORS[i % COLORS.length],
            width: 2,
            points: { show: true, size: 5 },
          })),
        ],
      },
      data,
      el,
    );
    state.plotKey = `${name}|${labels}`;
  } else {
    state.plot.setData(data);
  }
  const points = series.reduce((n, s) => n + s.points.length, 0);
  if (points > 0 && !state.drawn) {
    state.drawn = true;
    performance.mark("chart-drawn");
  }
  window.livePage.draws++;
  return points;
}

async function refreshChart() {
  const seriesAnswer = await refreshSeries().catch(() => ({ status: 0 }));
  if (seriesAnswer.status !== 200) {
    showChartProblem(
      seriesAnswer.status === 0
        ? "The server cannot be reached."
        : `Cannot read the series: ${describeError(seriesAnswer)}`,
    );
    return;
  }
  const name = $("metric").value;
  if (!name) {
    showChartProblem("Nothing stored yet: send some metrics, and they will appear here.");
    return;
  }
  const answer = await getJson(rangePath(name), true).catch(() => ({ status: 0 }));
  if (answer.status !== 200) {
    showChartProblem(
      answer.status === 0
        ? "The server cannot be reached."
        : `Cannot read ${name}: ${describeError(answer)}`,
    );
    return;
  }
  window.livePage.range = answer.body;
  const points = draw(name, answer.body.series);
  $("chart-panel").classList.remove("degraded");
  $("chart-status").classList.remove("degraded");
  $("chart-status").textContent =
    points === 0
      ? `No samples of ${name} in the last hour.`
      : `${answer.body.series.length} series, ${points} points (${$("agg").value} per ${STEP_SECONDS} s), updated ${new Date().toLocaleTimeString()}`;
}

function setHealth(field, value) {
  const el = document.querySelector(`[data-health="${field}"]`);
  if (el) el.textContent = value === null || value === undefined ? "–" : String(value);
}

async function refreshHealth() {
  const answer = await getJson("/api/v1/health", false).catch(() => ({ status: 0 }));
  const stateEl = $("health-state");
  const status = $("health-status");
  if (answer.status !== 200 || !answer.body.pipeline) {
    stateEl.textContent = "down";
    stateEl.className = "degraded";
    status.className = "degraded";
    status.textContent =
      answer.status === 0 ? "The server cannot be reached." : `Unhealthy: ${describeError(answer)}`;
    return;
  }
  const now = performance.now();
  const p = answer.body.pipeline;
  window.livePage.health = answer.body;
  const before = state.previousHealth;
  const rate = (field) =>
    before
      ? Math.max(0, ((field(p) - field(before.p)) * 1000) / (now - before.at)).toFixed(1)
      : null;
  setHealth("acceptedMessages", p.acceptedMessages);
  setHealth(
    "ingestRate",
    rate((x) => x.acceptedMessages),
  );
  setHealth("pending", p.consumer?.pending);
  setHealth("ackPending", p.consumer?.ackPending);
  setHealth("deadLetters", p.deadLetters);
  setHealth("workers", p.workers.answering);
  setHealth("metricsStored", p.workers.metricsStored);
  setHealth(
    "storeRate",
    rate((x) => x.workers.metricsStored),
  );
  state.previousHealth = { p, at: now };
  const degraded = p.workers.answering === 0;
  stateEl.textContent = degraded ? "degraded" : "ok";
  stateEl.className = degraded ? "degraded" : "ok";
  status.className = degraded ? "degraded" : "";
  status.textContent = degraded
    ? "No worker is answering: metrics are accepted and kept in the stream, but nothing is stored or read until a worker runs."
    : `Stream ${answer.body.stream.name}: ${answer.body.stream.messages} messages held.`;
}

function refresh() {
  return Promise.all([refreshChart(), refreshHealth()]);
}

function start() {
  const key = $("key");
  key.value = sessionStorage.getItem(KEY_STORAGE) ?? "";
  key.addEventListener("change", () => {
    if (key.value) sessionStorage.setItem(KEY_STORAGE, key.value);
    else sessionStorage.removeItem(KEY_STORAGE);
    void refresh();
  });
  $("controls").addEventListener("submit", (e) => e.preventDefault());
  $("metric").addEventListener("change", () => {
    $("series").value = "";
    fillSeriesChoice();
    void refreshChart();
  });
  $("series").addEventListener("change", () => void refreshChart());
  $("agg").addEventListener("change", () => void refreshChart());
  window.addEventListener("resize", () => {
    state.plot?.setSize({ width: Math.max(300, $("chart").clientWidth), height: 360 });
  });
  void refresh();
  setInterval(() => void refresh(), REFRESH_MS);
}

start();
