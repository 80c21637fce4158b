import { describe, expect, it } from "vitest";
import { METRIC_BOUNDS } from "../../shared/limits.ts";
import { parseRfc3339 } from "../../shared/timestamp.ts";
import { toDetails } from "../../edge/publish/validation-details.ts";
import { validateMetric } from "../../shared/validators.ts";

/** The JSON Pointers of the fields a metric is refused for; empty when it is accepted. */
function failures(metric: unknown): string[] {
  if (validateMetric(metric)) return [];
  return toDetails(0, validateMetric.errors ?? []).map((d) => d.path);
}

/** A metric as a client would send it: JSON text, parsed the way the service parses it. */
function fromJson(text: string): unknown {
  return JSON.parse(text) as unknown;
}

const metricWith = (fields: Record<string, unknown>): Record<string, unknown> => ({
  value: 1,
  ...fields,
});

/** `leaf` inside `levels` objects: {"a": {"a": … leaf}}. */
function nestedObjects(levels: number, leaf: unknown = 1): unknown {
  let value = leaf;
  for (let i = 0; i < levels; i++) value = { a: value };
  return value;
}

/** `leaf` inside `levels` arrays: [[… leaf]]. */
function nestedArrays(levels: number, leaf: unknown = 1): unknown {
  let value = leaf;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

/** An object with `count` properties k0, k1, … */
function objectOf(count: number, value: unknown = 1): Record<string, unknown> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, value]));
}

describe("value", () => {
  it.each([123.45, 0, -0.5, -1e300, 1e308, Number.MAX_SAFE_INTEGER])("accepts %s", (value) => {
    expect(failures({ value })).toEqual([]);
  });

  it.each([
    ['"1"', "a numeric string"],
    ["null", "null"],
    ["true", "true"],
    ["false", "false"],
    ["[1]", "an array"],
    ['{"n": 1}', "an object"],
    ["1e400", "a number JSON.parse turns into Infinity"],
    ["-1e400", "a number JSON.parse turns into -Infinity"],
  ])("refuses %s (%s)", (json) => {
    expect(failures(fromJson(`{"value": ${json}}`))).toEqual(["/value"]);
  });

  it.each(["1e400", "-1e400"])("says %s is out of range, not that it is no number", (json) => {
    expect(validateMetric(fromJson(`{"value": ${json}}`))).toBe(false);
    expect(toDetails(0, validateMetric.errors ?? [])).toEqual([
      {
        index: 0,
        path: "/value",
        message: "is out of range: must be a finite number within ±1.7976931348623157e308",
      },
    ]);
  });

  it.each([NaN, Infinity, -Infinity])("refuses %s", (value) => {
    expect(failures({ value })).toEqual(["/value"]);
  });

  it("is required", () => {
    expect(validateMetric({ name: "cpu" })).toBe(false);
    expect(toDetails(0, validateMetric.errors ?? [])).toEqual([
      { index: 0, path: "", message: "must have required property 'value'" },
    ]);
  });

  it.each([null, 1, "1", [{ value: 1 }]])("refuses a metric that is not an object: %j", (m) => {
    expect(failures(m)).toEqual([""]);
  });
});

describe("name", () => {
  it.each([
    ["one character", "a"],
    ["256 characters", "n".repeat(METRIC_BOUNDS.nameLength)],
    ["256 characters outside the BMP", "📈".repeat(METRIC_BOUNDS.nameLength)],
    ["dots and spaces", "http.server duration"],
  ])("accepts %s", (_, name) => {
    expect(failures(metricWith({ name }))).toEqual([]);
  });

  it.each([
    ["an empty name", ""],
    ["257 characters", "n".repeat(METRIC_BOUNDS.nameLength + 1)],
    ["a number", 42],
    ["null", null],
  ])("refuses %s", (_, name) => {
    expect(failures(metricWith({ name }))).toEqual(["/name"]);
  });
});

describe("timestamp", () => {
  it.each([
    "2024-05-01T12:34:56Z",
    "2024-05-01T12:34:56+02:00",
    "2024-05-01T12:34:56-07:30",
    "2024-05-01T12:34:56-00:00",
    "2024-05-01T12:34:56.1Z",
    "2024-05-01T12:34:56.123Z",
    "2024-05-01T12:34:56.123456789Z",
    "2024-05-01t12:34:56z",
    "2024-05-01 12:34:56Z",
    "2024-02-29T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999Z",
  ])("accepts the date-time %s", (timestamp) => {
    expect(failures(metricWith({ timestamp }))).toEqual([]);
  });

  it.each([0, 1, 1_714_566_896_789, METRIC_BOUNDS.maxTimestampMs])(
    "accepts the integer %s",
    (timestamp) => {
      expect(failures(metricWith({ timestamp }))).toEqual([]);
    },
  );

  it("accepts an integer written with an exponent (1e12 is an integer in JSON)", () => {
    expect(failures(fromJson('{"value": 1, "timestamp": 1e12}'))).toEqual([]);
  });

  it.each([
    ["a day that does not exist", "2024-02-30T00:00:00Z"],
    ["29 February of a common year", "2023-02-29T00:00:00Z"],
    ["31 April", "2024-04-31T00:00:00Z"],
    ["month 13", "2024-13-01T00:00:00Z"],
    ["month 0", "2024-00-10T00:00:00Z"],
    ["a leap second", "2016-12-31T23:59:60Z"],
    ["hour 24", "2024-05-01T24:00:00Z"],
    ["minute 60", "2024-05-01T12:60:00Z"],
    ["an offset with minute 60", "2024-05-01T12:00:00+02:60"],
    ["an offset without a colon", "2024-05-01T12:00:00+0200"],
    ["no offset", "2024-05-01T12:34:56"],
    ["a date alone", "2024-05-01"],
    ["ten fraction digits", "2024-05-01T12:34:56.1234567890Z"],
    ["a fraction without digits", "2024-05-01T12:34:56.Z"],
    ["a date in 1969", "1969-12-31T23:59:59.999Z"],
    ["an instant before the epoch", "1970-01-01T00:30:00+01:00"],
    ["year 10000", "10000-01-01T00:00:00Z"],
    ["an instant after 9999", "9999-12-31T23:59:59-01:00"],
    ["digits in a string", "1714566896789"],
    ["an empty string", ""],
    ["a string over 64 characters", `2024-05-01T12:34:56.${"1".repeat(44)}Z`],
    ["a float", 1.5],
    ["a negative integer", -1],
    ["one millisecond after 9999", METRIC_BOUNDS.maxTimestampMs + 1],
    ["a boolean", true],
    ["null", null],
  ])("refuses %s", (_, timestamp) => {
    expect(failures(metricWith({ timestamp }))).toEqual(["/timestamp"]);
  });

  it("explains a refused timestamp with one message, not one per union branch", () => {
    validateMetric(metricWith({ timestamp: "2024-02-30T00:00:00Z" }));
    const details = toDetails(3, validateMetric.errors ?? []);
    expect(details).toHaveLength(1);
    expect(details[0]).toMatchObject({ index: 3, path: "/timestamp" });
    expect(details[0]?.message).toMatch(/RFC 3339/);
  });
});

describe("parseRfc3339", () => {
  it.each([
    ["1970-01-01T00:00:00Z", 0],
    ["2024-05-01T12:34:56Z", 1_714_566_896_000],
    ["2024-05-01T12:34:56.789Z", 1_714_566_896_789],
    ["2024-05-01T12:34:56.7Z", 1_714_566_896_700],
    ["2024-05-01T12:34:56.07Z", 1_714_566_896_070],
    // Digits past the millisecond are cut, never rounded up into the next second.
    ["2024-05-01T12:34:56.123456789Z", 1_714_566_896_123],
    ["2024-05-01T12:34:56.9999Z", 1_714_566_896_999],
    ["2024-05-01T12:34:56+02:00", 1_714_559_696_000],
    ["2024-05-01T12:34:56-07:30", 1_714_593_896_000],
    ["2024-05-01T12:34:56-00:00", 1_714_566_896_000],
    ["2024-05-01t12:34:56z", 1_714_566_896_000],
    ["2024-05-01 12:34:56Z", 1_714_566_896_000],
    ["2024-02-29T23:59:59Z", 1_709_251_199_000],
    ["2000-02-29T00:00:00Z", 951_782_400_000],
    ["9999-12-31T23:59:59.999Z", METRIC_BOUNDS.maxTimestampMs],
  ])("reads %s as %d ms", (text, ms) => {
    expect(parseRfc3339(text)).toBe(ms);
  });

  it.each([
    "2024-02-30T00:00:00Z",
    "2100-02-29T00:00:00Z",
    "2016-12-31T23:59:60Z",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59.999-00:01",
    "2024-05-01T12:34:56+24:00",
    "2024-05-01T12:34:56",
    "2024-05-01T12:34:56.1234567890Z",
    " 2024-05-01T12:34:56Z",
    "2024-05-01T12:34:56Z ",
    "2024-5-1T12:34:56Z",
    "Wed, 01 May 2024 12:34:56 GMT",
  ])("refuses %j", (text) => {
    expect(parseRfc3339(text)).toBeUndefined();
  });
});

describe("tags", () => {
  it("accepts string values, including empty ones", () => {
    expect(failures(metricWith({ tags: { host: "a", region: "eu-west-1", empty: "" } }))).toEqual(
      [],
    );
  });

  it.each([
    ["64 tags", objectOf(METRIC_BOUNDS.tagCount, "v")],
    ["a 128-character key", { ["k".repeat(METRIC_BOUNDS.tagKeyLength)]: "v" }],
    ["a 256-character value", { k: "v".repeat(METRIC_BOUNDS.tagValueLength) }],
    ["no tags at all", {}],
  ])("accepts %s", (_, tags) => {
    expect(failures(metricWith({ tags }))).toEqual([]);
  });

  it("refuses 65 tags", () => {
    expect(failures(metricWith({ tags: objectOf(METRIC_BOUNDS.tagCount + 1, "v") }))).toEqual([
      "/tags",
    ]);
  });

  it("refuses a 257-character value", () => {
    expect(
      failures(metricWith({ tags: { k: "v".repeat(METRIC_BOUNDS.tagValueLength + 1) } })),
    ).toEqual(["/tags/k"]);
  });

  it.each([
    ["a number", 1],
    ["a boolean", true],
    ["null", null],
    ["an object", { nested: "x" }],
  ])("refuses a value that is %s", (_, value) => {
    expect(failures(metricWith({ tags: { k: value } }))).toEqual(["/tags/k"]);
  });

  it.each([
    ["an array", ["a", "b"]],
    ["a string", "host=a"],
    ["null", null],
  ])("refuses tags that are %s", (_, tags) => {
    expect(failures(metricWith({ tags }))).toEqual(["/tags"]);
  });

  it.each(["a\nb", "a\rb", "a\u2028b", "\n"])(
    "checks the value of a key holding a line end (%j) like any other",
    (key) => {
      expect(failures(metricWith({ tags: { [key]: "v" } }))).toEqual([]);
      expect(failures(metricWith({ tags: { [key]: 5 } }))).not.toEqual([]);
      expect(failures(metricWith({ tags: { [key]: { nested: "x" } } }))).not.toEqual([]);
    },
  );

  it("refuses an empty key", () => {
    expect(
      failures(metricWith({ tags: { "": "v" } })),
      "tag keys are 1–128 characters",
    ).not.toEqual([]);
  });

  it("refuses a 129-character key", () => {
    expect(
      failures(metricWith({ tags: { ["k".repeat(METRIC_BOUNDS.tagKeyLength + 1)]: "v" } })),
      "tag keys are 1–128 characters",
    ).not.toEqual([]);
  });
});

describe("extra fields", () => {
  it("keeps any JSON, unchanged by validation", () => {
    const text =
      '{"value": 1, "unit": "ms", "ok": true, "nothing": null, "ratio": 0.5, "host": {"name": "a", "cpus": [1, 2, {"id": "x"}]}, "list": []}';
    const metric = fromJson(text);
    expect(failures(metric)).toEqual([]);
    expect(JSON.stringify(metric)).toBe(JSON.stringify(JSON.parse(text)));
  });

  it.each([
    ["objects", nestedObjects],
    ["arrays", nestedArrays],
  ])(`accepts ${METRIC_BOUNDS.extraDepth} levels of nested %s and refuses one more`, (_, nest) => {
    expect(failures(metricWith({ extra: nest(METRIC_BOUNDS.extraDepth) }))).toEqual([]);
    expect(failures(metricWith({ extra: nest(METRIC_BOUNDS.extraDepth + 1) }))).toEqual(["/extra"]);
  });

  it("bounds the depth under a property name holding a line end like any other", () => {
    const under = (levels: number) => ({ "a\nb": nestedObjects(levels - 1) });
    expect(failures(metricWith({ extra: under(METRIC_BOUNDS.extraDepth) }))).toEqual([]);
    expect(failures(metricWith({ extra: under(METRIC_BOUNDS.extraDepth + 1) }))).toEqual([
      "/extra",
    ]);
    const items = Array.from({ length: METRIC_BOUNDS.arrayItems + 1 }, (_, i) => i);
    expect(failures(metricWith({ extra: { "a\rb": items } }))).toEqual(["/extra"]);
  });

  it("counts mixed arrays and objects as levels alike", () => {
    const mixed = (levels: number) => nestedArrays(levels - 4, nestedObjects(4));
    expect(failures(metricWith({ extra: mixed(METRIC_BOUNDS.extraDepth) }))).toEqual([]);
    expect(failures(metricWith({ extra: mixed(METRIC_BOUNDS.extraDepth + 1) }))).toEqual([
      "/extra",
    ]);
  });

  it("refuses a deeply nested value with one detail", () => {
    validateMetric(metricWith({ extra: nestedObjects(50) }));
    const details = toDetails(0, validateMetric.errors ?? []);
    expect(details.map((d) => d.path)).toEqual(["/extra"]);
    expect(details[0]?.message).toMatch(/nested at most 8 levels/);
  });

  it.each([
    ["at the top", (s: string) => s],
    ["inside an object", (s: string) => ({ inner: s })],
    ["inside an array", (s: string) => [s]],
  ])("bounds strings %s to 4096 characters", (_, place) => {
    const ok = "s".repeat(METRIC_BOUNDS.stringLength);
    expect(failures(metricWith({ extra: place(ok) }))).toEqual([]);
    expect(failures(metricWith({ extra: place(`${ok}s`) }))).toEqual(["/extra"]);
  });

  it("bounds arrays to 1000 items", () => {
    const items = (n: number) => Array.from({ length: n }, (_, i) => i);
    expect(failures(metricWith({ extra: items(METRIC_BOUNDS.arrayItems) }))).toEqual([]);
    expect(failures(metricWith({ extra: items(METRIC_BOUNDS.arrayItems + 1) }))).toEqual([
      "/extra",
    ]);
  });

  it("bounds objects to 100 properties", () => {
    expect(failures(metricWith({ extra: objectOf(METRIC_BOUNDS.objectProperties) }))).toEqual([]);
    expect(failures(metricWith({ extra: objectOf(METRIC_BOUNDS.objectProperties + 1) }))).toEqual([
      "/extra",
    ]);
  });

  it("bounds the metric itself to 100 properties, value included", () => {
    const metric = (count: number) => ({ ...objectOf(count - 1), value: 1 });
    expect(failures(metric(METRIC_BOUNDS.objectProperties))).toEqual([]);
    expect(failures(metric(METRIC_BOUNDS.objectProperties + 1))).toEqual([""]);
  });

  it("bounds the metric's own property names to 4096 characters", () => {
    const key = "k".repeat(METRIC_BOUNDS.stringLength);
    expect(failures(metricWith({ [key]: 1 }))).toEqual([]);
    expect(failures(metricWith({ [`${key}k`]: 1 }))).not.toEqual([]);
  });

  it("bounds property names inside extra fields to 4096 characters", () => {
    const key = "k".repeat(METRIC_BOUNDS.stringLength);
    expect(failures(metricWith({ extra: { [key]: 1 } }))).toEqual([]);
    expect(
      failures(metricWith({ extra: { [`${key}k`]: 1 } })),
      "every property name inside a metric is at most 4096 characters (limits.ts)",
    ).not.toEqual([]);
  });
});

describe("keys such as __proto__", () => {
  const text =
    '{"value": 1, "__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}, "prototype": {"polluted": "yes"}, "extra": {"__proto__": {"polluted": "yes"}}, "tags": {"__proto__": "x", "constructor": "y", "toString": "z"}}';

  it("are accepted as plain data and leave Object.prototype alone", () => {
    const metric = fromJson(text) as Record<string, unknown>;
    expect(failures(metric)).toEqual([]);

    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty("polluted");
    expect(Object.getPrototypeOf(metric)).toBe(Object.prototype);
    expect(Object.hasOwn(metric, "__proto__")).toBe(true);
    expect(Object.keys(metric)).toEqual([
      "value",
      "__proto__",
      "constructor",
      "prototype",
      "extra",
      "tags",
    ]);
    expect(JSON.stringify(metric)).toBe(JSON.stringify(JSON.parse(text)));
  });

  it("are validated like any other key", () => {
    const tooLong = "s".repeat(METRIC_BOUNDS.stringLength + 1);
    expect(failures(fromJson(`{"value": 1, "__proto__": "${tooLong}"}`))).toEqual(["/__proto__"]);
    expect(failures(fromJson('{"value": 1, "tags": {"__proto__": 5}}'))).toEqual([
      "/tags/__proto__",
    ]);
    expect(failures(fromJson('{"__proto__": {"value": 1}}'))).toContain("");
  });
});
