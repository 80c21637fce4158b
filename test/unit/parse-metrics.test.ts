import { describe, expect, it } from "vitest";
import { METRIC_BOUNDS, REQUEST_LIMITS } from "../../shared/limits.ts";
import { runToEnd } from "../../shared/cooperative.ts";
import {
  jsonEncodingOf,
  parseMetrics as parse,
  type JsonEncoding,
} from "../../edge/json/parse-metrics.ts";
import { refusal } from "../helpers/refusal.ts";

/** The body's metrics, parsed and validated at once. */
const parseMetrics = (text: string, format: JsonEncoding) =>
  runToEnd(parse([text], format)).metrics;

const refusalOf = (text: string, format: JsonEncoding = "json") =>
  refusal(() => parseMetrics(text, format));

/** A JSON body holding `data`. */
const jsonBody = (data: unknown) => JSON.stringify({ data });

/** An NDJSON body of one line per metric. */
const ndjson = (metrics: readonly unknown[]) => metrics.map((m) => JSON.stringify(m)).join("\n");

describe("jsonEncodingOf", () => {
  it.each([
    ["application/json", "json"],
    ["Application/JSON", "json"],
    ["application/json; charset=utf-8", "json"],
    ["application/json;charset=UTF-8", "json"],
    ['application/json; charset="utf-8"', "json"],
    ["application/json; charset=utf8", "json"],
    ["application/x-ndjson", "ndjson"],
    ["APPLICATION/X-NDJSON; Charset=UTF-8", "ndjson"],
  ])("reads %j as %s", (contentType, format) => {
    expect(jsonEncodingOf(contentType)).toBe(format);
  });

  it.each([
    null,
    "",
    "text/plain",
    "text/json",
    "application/xml",
    "application/jsonl",
    "application/json-seq",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "application/json; charset=iso-8859-1",
    "application/json; charset=utf-16",
    "application/x-ndjson; charset=latin1",
  ])("refuses %j with 415 unsupported_media_type", (contentType) => {
    const err = refusal(() => jsonEncodingOf(contentType));
    expect(err.code).toBe("unsupported_media_type");
    expect(err.status).toBe(415);
  });
});

describe("parseMetrics with a JSON body", () => {
  it("reads a single metric", () => {
    expect(parseMetrics('{"data": {"value": 123.45}}', "json")).toEqual([{ value: 123.45 }]);
  });

  it("reads an array of metrics in order, keeping every field", () => {
    const metrics = [
      { value: 1, name: "a", tags: { host: "h" }, unit: "ms" },
      { value: 2, timestamp: "2024-05-01T12:34:56Z" },
      { value: 3, timestamp: 1_714_566_896_789, extra: { nested: [1, "x", null] } },
    ];
    expect(parseMetrics(jsonBody(metrics), "json")).toEqual(metrics);
  });

  it.each([
    ["an empty object", "{}"],
    ["a number as data", '{"data": 1}'],
    ["null as data", '{"data": null}'],
    ["a string as data", '{"data": "x"}'],
    ["true as data", '{"data": true}'],
    ["another top-level key", '{"data": {"value": 1}, "meta": {}}'],
    ["another top-level key beside an array", '{"data": [{"value": 1}], "v": 2}'],
    ["a misspelt key", '{"Data": {"value": 1}}'],
    ["a top-level array", '[{"value": 1}]'],
    ["a bare metric", '{"value": 1}'],
    ["a top-level number", "1"],
    ["a top-level null", "null"],
  ])("refuses %s with 400 invalid_body", (_, text) => {
    const err = refusalOf(text);
    expect(err.code).toBe("invalid_body");
    expect(err.status).toBe(400);
  });

  it("refuses an empty object as the metric with a detail naming the missing value", () => {
    const err = refusalOf('{"data": {}}');
    expect(err.code).toBe("invalid_metrics");
    expect(err.details).toEqual([
      { index: 0, path: "", message: "must have required property 'value'" },
    ]);
  });

  it.each([
    ["an empty body", ""],
    ["a blank body", "  \r\n\t "],
    ["an empty array", '{"data": []}'],
  ])("refuses %s with 400 empty_batch", (_, text) => {
    const err = refusalOf(text);
    expect(err.code).toBe("empty_batch");
    expect(err.status).toBe(400);
  });
});

describe("malformed JSON", () => {
  const secret = "SECRET-TOKEN-42";

  it.each([
    ["a trailing comma", `{"data": {"value": 1, "${secret}": 2,}}`],
    ["a missing comma", `{"data": {"value": 1 "${secret}": 2}}`],
    ["a truncated body", `{"data": {"value": 1, "note": "${secret}"`],
    ["an unquoted word", `{"data": {"value": ${secret}}}`],
    ["an unterminated string", `{"data": {"value": 1, "note": "${secret}`],
    ["plain text", `${secret} is not JSON`],
  ])("refuses %s with 400 malformed_body, without repeating the body", (_, text) => {
    const err = refusalOf(text);
    expect(err.code).toBe("malformed_body");
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/^The body is not valid JSON/);
    expect(err.message).not.toContain("SECRET");
    expect(err.message).not.toContain("value");
  });

  it("names the position of the error", () => {
    const text = '{"data": {"value": 1,}}';
    expect(refusalOf(text).message).toBe("The body is not valid JSON (at position 21).");
  });

  it("names the position of an unexpected character after the value as well", () => {
    expect(refusalOf('{"data": {"value": 1}}}').message).toContain("at position 22");
  });

  // V8 gives no position for these; the message then says only that the JSON is invalid.
  it.each([
    ["an unexpected token", '{"data": {"value": oops}}'],
    ["a body that ends too early", '{"data": {"value": '],
  ])("says no more than 'not valid JSON' for %s", (_, text) => {
    expect(refusalOf(text).message).toBe("The body is not valid JSON.");
  });
});

describe("parseMetrics with an NDJSON body", () => {
  it("reads one metric per line, ignoring blank lines and CRLF line ends", () => {
    const text = '\r\n{"value": 1}\r\n\r\n   \n{"value": 2, "name": "b"}\r\n\n';
    expect(parseMetrics(text, "ndjson")).toEqual([{ value: 1 }, { value: 2, name: "b" }]);
  });

  it("reads a last line without a line end", () => {
    expect(parseMetrics('{"value": 1}\n{"value": 2}', "ndjson")).toHaveLength(2);
  });

  it.each([
    ["an empty body", ""],
    ["only blank lines", "\n\n   \r\n\t\n"],
  ])("refuses %s with 400 empty_batch", (_, text) => {
    expect(refusalOf(text, "ndjson").code).toBe("empty_batch");
  });

  it("refuses a bad line with malformed_body naming the line and not its text", () => {
    const err = refusalOf('{"value": 1}\n\n{"value": SECRET\n{"value": 3}', "ndjson");
    expect(err.code).toBe("malformed_body");
    expect(err.message).toMatch(/^Line 3 is not valid JSON/);
    expect(err.message).not.toContain("SECRET");
  });

  it("refuses a JSON body wrapper sent as NDJSON as an invalid metric", () => {
    const err = refusalOf('{"data": {"value": 1}}', "ndjson");
    expect(err.code).toBe("invalid_metrics");
  });

  it("gives the metric's position among the non-blank lines, from 0, as its index", () => {
    const err = refusalOf('\n{"value": 1}\n\n{"value": "x"}\n', "ndjson");
    expect(err.code).toBe("invalid_metrics");
    // The same index as the stored row's key, `<message id>/<index>`.
    expect(err.details).toEqual([{ index: 1, path: "/value", message: "must be number" }]);
  });
});

describe("invalid metrics", () => {
  it("refuses the whole request with a detail for every bad metric and field", () => {
    const err = refusalOf(
      jsonBody([
        { value: 1 },
        { value: "x", name: "" },
        { value: 2 },
        { tags: { a: 1 } },
        { value: 3, timestamp: "2024-02-30T00:00:00Z" },
      ]),
    );
    expect(err.code).toBe("invalid_metrics");
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/^3 metric\(s\) are invalid/);
    expect(err.details?.map(({ index, path }) => ({ index, path }))).toEqual([
      { index: 1, path: "/value" },
      { index: 1, path: "/name" },
      { index: 3, path: "" },
      { index: 3, path: "/tags/a" },
      { index: 4, path: "/timestamp" },
    ]);
    for (const detail of err.details ?? []) expect(detail.message).not.toBe("");
  });

  it("lists at most 100 details and says how many metrics were bad", () => {
    const bad = Array.from({ length: 150 }, () => ({ value: "x", name: "" }));
    const err = refusalOf(jsonBody(bad));
    expect(err.code).toBe("invalid_metrics");
    expect(err.details).toHaveLength(REQUEST_LIMITS.errorDetails);
    expect(err.details?.[0]).toEqual({ index: 0, path: "/value", message: "must be number" });
    expect(err.details?.at(-1)).toMatchObject({ index: 49, path: "/name" });
    expect(err.message).toBe(
      "150 metric(s) are invalid (the first 100 problems are listed); nothing was accepted.",
    );
  });

  it("does not say details were cut when all of them are listed", () => {
    const err = refusalOf(jsonBody([{ value: "x" }]));
    expect(err.message).toBe("1 metric(s) are invalid; nothing was accepted.");
  });
});

describe("request limits", () => {
  const metrics = (n: number) => Array.from({ length: n }, (_, i) => ({ value: i }));

  it("accepts 10,000 metrics", () => {
    expect(parseMetrics(jsonBody(metrics(REQUEST_LIMITS.metricsPerRequest)), "json")).toHaveLength(
      REQUEST_LIMITS.metricsPerRequest,
    );
  });

  it.each<[JsonEncoding, (m: unknown[]) => string]>([
    ["json", jsonBody],
    ["ndjson", ndjson],
  ])("refuses 10,001 %s metrics with 413 too_many_metrics", (format, encode) => {
    const err = refusalOf(encode(metrics(REQUEST_LIMITS.metricsPerRequest + 1)), format);
    expect(err.code).toBe("too_many_metrics");
    expect(err.status).toBe(413);
    expect(err.message).toContain("10000");
  });
});

describe("a deeply nested body", () => {
  const depth = 100_000;
  const arrays = "[".repeat(depth) + "]".repeat(depth);
  const objects = '{"a":'.repeat(depth) + "1" + "}".repeat(depth);

  it.each<[string, string, JsonEncoding]>([
    ["nested arrays as data", `{"data": ${arrays}}`, "json"],
    ["nested objects as data", `{"data": ${objects}}`, "json"],
    ["nested objects in an extra field", `{"data": {"value": 1, "x": ${objects}}}`, "json"],
    ["nested arrays in an extra field", `{"data": [{"value": 1, "x": ${arrays}}]}`, "json"],
    ["nested arrays never closed", `{"data": ${"[".repeat(depth)}`, "json"],
    ["nested objects on an NDJSON line", `{"value": 1, "x": ${objects}}`, "ndjson"],
  ])("refuses %s with a 4xx ApiError", (_, text, format) => {
    const err = refusalOf(text, format);
    expect(err.status).toBeGreaterThanOrEqual(400);
    expect(err.status).toBeLessThan(500);
    expect(JSON.stringify(err.details ?? []).length).toBeLessThan(10_000);
  });

  it(`accepts extra fields nested ${METRIC_BOUNDS.extraDepth} levels deep`, () => {
    const levels = METRIC_BOUNDS.extraDepth;
    const text = `{"data": {"value": 1, "x": ${"[".repeat(levels)}1${"]".repeat(levels)}}}`;
    expect(parseMetrics(text, "json")).toHaveLength(1);
  });
});
