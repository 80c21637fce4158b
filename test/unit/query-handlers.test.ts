import { describe, expect, it } from "vitest";
import { createAuthenticator } from "../../edge/http/auth.ts";
import { ApiError, ERRORS, type ErrorCode } from "../../edge/http/errors.ts";
import type { QueryClient } from "../../edge/query/query-client.ts";
import { createQueryRangeHandler, createSeriesHandler } from "../../edge/query/query-handlers.ts";
import { rangeQueryOf } from "../../edge/query/query-params.ts";
import { QUERY_LIMITS } from "../../shared/query-limits.ts";
import type { RangeQuery, SeriesQuery } from "../../shared/query-protocol.ts";
import { silentLogger } from "../helpers/logger.ts";

/** The read endpoints over a fake query client: parameters, bounds, keys and refusals. */
const NOW = Date.UTC(2026, 10, 27, 10);
const READ_KEY = "read-key-0123456789abcdefgh";
const JSON_KEY = "json-key-0123456789abcdefgh";

function handlers(answer: (q: unknown) => Promise<unknown[]> = () => Promise.resolve([])) {
  const asked: unknown[] = [];
  const client: QueryClient = {
    series: (q: SeriesQuery) => (asked.push(q), answer(q)) as never,
    range: (q: RangeQuery) => (asked.push(q), answer(q)) as never,
  };
  const options = {
    client,
    authenticate: createAuthenticator({
      apiKeys: [`${READ_KEY}@read`, `${JSON_KEY}@json`],
      authMode: undefined,
      isLocal: false,
      scope: "read",
    }),
    logger: silentLogger,
    now: () => NOW,
  };
  return { series: createSeriesHandler(options), range: createQueryRangeHandler(options), asked };
}

/** A refusal as the catalogue says: its code, status and Retry-After (the body is read from a copy). */
async function expectRefusal(res: Response, code: ErrorCode): Promise<void> {
  const spec: { status: number; retryAfter?: number } = ERRORS[code];
  const body = (await res.clone().json()) as { status: string; error: { code: string } };
  expect(body.error.code).toBe(code);
  expect(body.status).toBe("error");
  expect(res.status).toBe(spec.status);
  expect(res.headers.get("retry-after")).toBe(
    spec.retryAfter === undefined ? null : String(spec.retryAfter),
  );
}

const get = (path: string, key = READ_KEY, method = "GET") =>
  new Request(`http://localhost${path}`, { method, headers: { authorization: `Bearer ${key}` } });

describe("query_range parameters", () => {
  it("defaults to the last hour at 60 s steps, averaged", () => {
    expect(rangeQueryOf(new URLSearchParams("name=cpu"), NOW)).toEqual({
      name: "cpu",
      tags: {},
      startMs: NOW - 3_600_000,
      endMs: NOW,
      stepMs: 60_000,
      agg: "avg",
    });
  });

  it("reads RFC 3339 and millisecond times, fractional steps and tag filters", () => {
    const q = rangeQueryOf(
      new URLSearchParams(
        "name=cpu&start=2026-11-27T09:00:00%2B01:00&end=1795773600000&step=1.5&agg=last&tag.host=a&tag.__proto__=x",
      ),
      NOW,
    );
    expect(q).toMatchObject({
      startMs: Date.UTC(2026, 10, 27, 8),
      endMs: 1795773600000,
      stepMs: 1500,
    });
    expect(Object.entries(q.tags)).toEqual([
      ["host", "a"],
      ["__proto__", "x"],
    ]);
  });

  it.each([
    ["start=soon&name=x", /start must be/],
    ["name=x&step=0", /step must be/],
    ["name=x&step=-1", /step must be/],
    ["name=x&step=0.5", /at least 1 s/],
    ["name=x&agg=median", /agg must be one of avg, min, max, sum, count, last/],
    ["step=60", /name is required/],
    ["name=x&tags.host=a", /Unknown parameter "tags.host"/],
    ["name=x&tag.=a", /key must be/],
    ["name=x&name=y", /more than once/],
    [`name=x&start=${NOW}&end=${NOW - 1}`, /end is before start/],
  ])("refuses %s as invalid_query", (params, message) => {
    expect(() => rangeQueryOf(new URLSearchParams(params), NOW)).toThrow(message);
    try {
      rangeQueryOf(new URLSearchParams(params), NOW);
    } catch (err) {
      expect((err as ApiError).code).toBe("invalid_query");
    }
  });

  it.each([
    [`name=x&start=0&end=${QUERY_LIMITS.maxRangeMs + 1}&step=3600`, /limit of 32 days/],
    [
      `name=x&start=0&end=${QUERY_LIMITS.maxPointsPerSeries * 1000}&step=1`,
      /limit of 11000 points per series/,
    ],
  ])("refuses %s as query_too_large, naming the bound", (params, message) => {
    expect(() => rangeQueryOf(new URLSearchParams(params), NOW)).toThrow(message);
  });
});

describe("the read endpoints", () => {
  it("answer the worker's series as {status, series}, uncached", async () => {
    const series = [{ name: "cpu", tags: { host: "a" }, points: [[NOW, 1]] }];
    const { range, asked } = handlers(() => Promise.resolve(series));
    const res = await range(get("/api/v1/query_range?name=cpu&tag.host=a"));
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toEqual({ status: "ok", series });
    expect(asked).toEqual([expect.objectContaining({ name: "cpu", tags: { host: "a" } })]);
  });

  it("pass a series query's name and filters", async () => {
    const { series, asked } = handlers();
    expect((await series(get("/api/v1/series?tag.region=eu"))).status).toBe(200);
    expect(asked).toEqual([{ tags: { region: "eu" } }]);
  });

  it("ask for a key of the read scope, and ask nothing of the workers otherwise", async () => {
    const { series, asked } = handlers();
    await expectRefusal(await series(get("/api/v1/series", JSON_KEY)), "insufficient_scope");
    await expectRefusal(
      await series(get("/api/v1/series", "wrong-key-0123456789abc")),
      "unauthorized",
    );
    expect(asked).toEqual([]);
  });

  it("take GET only (Allow: GET)", async () => {
    const { range } = handlers();
    const res = await range(get("/api/v1/query_range?name=x", READ_KEY, "POST"));
    await expectRefusal(res, "method_not_allowed");
    expect(res.headers.get("allow")).toBe("GET");
  });

  it.each(["query_unavailable", "query_too_large", "nats_unavailable"] as const)(
    "answer the client's refusal %s with its status",
    async (code) => {
      const { range } = handlers(() => Promise.reject(new ApiError(code, "no")));
      await expectRefusal(await range(get("/api/v1/query_range?name=x")), code);
    },
  );

  it("answer a worker's failure as an opaque 500", async () => {
    const { series } = handlers(() => Promise.reject(new Error("a worker failed to answer: boom")));
    const res = await series(get("/api/v1/series"));
    await expectRefusal(res, "internal_error");
    expect(await res.text()).not.toMatch(/boom/);
  });
});
