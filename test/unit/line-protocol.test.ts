import { Point } from "@influxdata/influxdb-client";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  LineProtocolError,
  parseLineProtocol,
  type FieldValue,
  type LinePoint,
} from "../../edge/influx/line-protocol.ts";
import { charactersRead } from "../helpers/string-work.ts";

const parse = (text: string): LinePoint[] => [...parseLineProtocol(text)];

/** The one point of a one-line text. */
function only(text: string): LinePoint {
  const points = parse(text);
  expect(points).toHaveLength(1);
  return points[0] as LinePoint;
}

/** The parser's refusal of `text`; fails the test when it parses or throws anything else. */
function refusal(text: string): LineProtocolError {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof LineProtocolError) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be refused`);
}

const fieldOf = (text: string): FieldValue | undefined => only(`m f=${text}`).fields[0]?.[1];

describe("a point", () => {
  it("has its measurement, tags, fields of every type and timestamp", () => {
    expect(
      only(
        'cpu,host=web-1,region=eu usage=0.5,count=3i,big=18446744073709551615u,up=true,note="hi" 1700000000000000000',
      ),
    ).toEqual({
      line: 1,
      measurement: "cpu",
      head: "cpu,host=web-1,region=eu",
      tags: [
        ["host", "web-1"],
        ["region", "eu"],
      ],
      fields: [
        ["usage", { type: "float", value: 0.5, text: "0.5" }],
        ["count", { type: "integer", value: 3n }],
        ["big", { type: "unsigned", value: 18446744073709551615n }],
        ["up", { type: "boolean", value: true }],
        ["note", { type: "string", value: "hi" }],
      ],
      timestamp: 1700000000000000000n,
    });
  });

  it("may have no tags and no timestamp", () => {
    expect(only("m f=1")).toEqual({
      line: 1,
      measurement: "m",
      head: "m",
      tags: [],
      fields: [["f", { type: "float", value: 1, text: "1" }]],
      timestamp: undefined,
    });
  });

  it("takes several spaces between its sections, and spaces around the line", () => {
    const point = only("   m,t=1    f=1,g=2     42   ");
    expect(point.tags).toEqual([["t", "1"]]);
    expect(point.fields.map(([k]) => k)).toEqual(["f", "g"]);
    expect(point.timestamp).toBe(42n);
  });

  it("keeps Unicode as it is", () => {
    const point = only('température,lieu=Zürich valeur=21.5,note="☀ ok"');
    expect(point.measurement).toBe("température");
    expect(point.tags).toEqual([["lieu", "Zürich"]]);
    expect(point.fields[1]).toEqual(["note", { type: "string", value: "☀ ok" }]);
  });
});

describe("escaping", () => {
  it.each([
    ["a space in a measurement", "my\\ cpu f=1", "my cpu"],
    ["a comma in a measurement", "my\\,cpu f=1", "my,cpu"],
    ["an equals sign in a measurement, as it is", "a=b f=1", "a=b"],
    ["an escaped equals sign in a measurement, kept with its backslash", "a\\=b f=1", "a\\=b"],
    ["a backslash before another character, kept", "a\\b f=1", "a\\b"],
    ["two backslashes, kept (only the one before a comma escapes)", "a\\\\b f=1", "a\\\\b"],
    ["a backslash then an escaped comma", "a\\\\,b f=1", "a\\,b"],
    ["a double quote, as it is", 'a"b f=1', 'a"b'],
    ["a hash after the first character", "a#b f=1", "a#b"],
  ])("measurement: %s", (_, text, measurement) => {
    expect(only(text).measurement).toBe(measurement);
  });

  it.each([
    ["a space", "m,k\\ 1=v\\ 1 f=1", "k 1", "v 1"],
    ["a comma", "m,k\\,1=v\\,1 f=1", "k,1", "v,1"],
    ["an equals sign", "m,k\\=1=v\\=1 f=1", "k=1", "v=1"],
    ["a backslash before another character", "m,k\\x=v\\x f=1", "k\\x", "v\\x"],
    ["a double quote", 'm,k"=v" f=1', 'k"', 'v"'],
  ])("tag key and value: %s", (_, text, key, value) => {
    expect(only(text).tags).toEqual([[key, value]]);
  });

  it.each([
    ["a space", "m f\\ 1=1", "f 1"],
    ["a comma", "m f\\,1=1", "f,1"],
    ["an equals sign", "m f\\=1=1", "f=1"],
    ["a backslash before another character", "m f\\x=1", "f\\x"],
  ])("field key: %s", (_, text, key) => {
    expect(only(text).fields[0]?.[0]).toBe(key);
  });

  it.each([
    ["an escaped double quote", '"say \\"hi\\""', 'say "hi"'],
    ["an escaped backslash", '"C:\\\\temp"', "C:\\temp"],
    ["a backslash before another character, kept", '"a\\nb"', "a\\nb"],
    ["a backslash then an escaped quote", '"a\\\\\\"b"', 'a\\"b'],
    ["commas, spaces and equals signs as they are", '"a, b = c"', "a, b = c"],
    ["an empty string", '""', ""],
    ["a newline: the string spans lines", '"line one\nline two"', "line one\nline two"],
    ["a CR LF inside, kept", '"a\r\nb"', "a\r\nb"],
  ])("string field value: %s", (_, text, value) => {
    expect(fieldOf(text)).toEqual({ type: "string", value });
  });
});

describe("field values", () => {
  it.each([
    // With its text when that is how JavaScript writes the number, to be stored as it came.
    ["1", 1, "1"],
    ["-1", -1, "-1"],
    ["1.", 1, undefined],
    [".5", 0.5, undefined],
    ["-.5", -0.5, undefined],
    ["1.5e3", 1500, undefined],
    ["1E-2", 0.01, undefined],
    ["2e+2", 200, undefined],
    ["1.e5", 100000, undefined],
    ["0.1", 0.1, "0.1"],
    ["1.50", 1.5, undefined],
    ["-0", -0, undefined],
    ["1.7976931348623157e308", Number.MAX_VALUE, undefined],
  ])("float %s", (token, value, text) => {
    expect(fieldOf(token)).toStrictEqual({ type: "float", value, text });
  });

  it.each([
    ["0i", 0n],
    ["-42i", -42n],
    ["0007i", 7n],
    ["9223372036854775807i", 9223372036854775807n],
    ["-9223372036854775808i", -9223372036854775808n],
  ])("integer %s", (text, value) => {
    expect(fieldOf(text)).toEqual({ type: "integer", value });
  });

  it.each([
    ["0u", 0n],
    ["18446744073709551615u", 18446744073709551615n],
  ])("unsigned %s", (text, value) => {
    expect(fieldOf(text)).toEqual({ type: "unsigned", value });
  });

  it.each(["t", "T", "true", "True", "TRUE"])("boolean true: %s", (text) => {
    expect(fieldOf(text)).toEqual({ type: "boolean", value: true });
  });

  it.each(["f", "F", "false", "False", "FALSE"])("boolean false: %s", (text) => {
    expect(fieldOf(text)).toEqual({ type: "boolean", value: false });
  });

  it.each([
    ["tRUE", "not a number, boolean or quoted string"],
    ["yes", "not a number, boolean or quoted string"],
    ["NaN", "not a number, boolean or quoted string"],
    ["Inf", "not a number, boolean or quoted string"],
    ["+1", "not a number, boolean or quoted string"],
    ["'single'", "not a number, boolean or quoted string"],
    ["1.5i", "not an integer"],
    ["-1u", "not an unsigned integer"],
    ["1a", "not a number"],
    ["0x10", "not a number"],
    ["1_000", "not a number"],
    ["1e", "not a number"],
    ["-", "not a number"],
    [".", "not a number"],
    ["9223372036854775808i", "out of the signed 64-bit range"],
    ["-9223372036854775809i", "out of the signed 64-bit range"],
    ["18446744073709551616u", "out of the unsigned 64-bit range"],
    ["1e309", "float out of range"],
    ["-1e309", "float out of range"],
  ])("refuses %s (%s)", (text, reason) => {
    const err = refusal(`m f=${text}`);
    expect(err.reason).toContain(reason);
    expect(err.reason).toContain('the field "f"');
    expect([err.line, err.column]).toEqual([1, 5]);
  });
});

describe("timestamps", () => {
  it.each([
    ["m f=1 0", 0n],
    ["m f=1 -1", -1n],
    ["m f=1 007", 7n],
    ["m f=1 9223372036854775807", 9223372036854775807n],
    ["m f=1 -9223372036854775808", -9223372036854775808n],
    ["m f=1 5  ", 5n],
    ["m f=1 5\r\n", 5n],
  ])("%j has %s", (text, timestamp) => {
    expect(only(text).timestamp).toBe(timestamp);
  });

  it.each([
    ["m f=1 1.5", "not an integer"],
    ["m f=1 1e9", "not an integer"],
    ["m f=1 x", "not an integer"],
    ["m f=1 -", "not an integer"],
    ["m f=1 9223372036854775808", "out of the 64-bit range"],
    ["m f=1 1 2", "unexpected text after the timestamp"],
    ["m f=1 1\t", "not an integer"],
  ])("%j is refused: %s", (text, reason) => {
    expect(refusal(text).reason).toContain(reason);
  });
});

describe("lines", () => {
  it("skips blank lines, lines of spaces and comments, and tells each point's line", () => {
    const text = "# a comment\n\n   \n  # an indented comment\nm f=1\r\n\r\nm f=2\n#last";
    expect(parse(text).map((p) => [p.line, p.fields[0]?.[1]])).toEqual([
      [5, { type: "float", value: 1, text: "1" }],
      [7, { type: "float", value: 2, text: "2" }],
    ]);
  });

  it("counts the lines a string spans", () => {
    const points = parse('m s="a\nb\nc"\nm f=1\n');
    expect(points.map((p) => p.line)).toEqual([1, 4]);
  });

  it("reads nothing from an empty text, or one of blank lines and comments", () => {
    expect(parse("")).toEqual([]);
    expect(parse("\n\r\n  \n# only a comment")).toEqual([]);
  });

  it("yields the points before a bad line, then refuses it", () => {
    const points = parseLineProtocol("m f=1\nm f=2\nm f=\nm f=4");
    expect(points.next().value).toMatchObject({ line: 1 });
    expect(points.next().value).toMatchObject({ line: 2 });
    expect(() => points.next()).toThrow(LineProtocolError);
  });
});

describe("refusals name the line and column", () => {
  it.each([
    ["cpu", 1, 4, "the point has no fields"],
    ["cpu ", 1, 5, "the point has no fields"],
    ["cpu,host=a", 1, 11, "the point has no fields"],
    [",host=a f=1", 1, 1, "a measurement name is missing"],
    ["cpu,host f=1", 1, 9, "expected '=' after the tag key \"host\""],
    ["cpu,=a f=1", 1, 5, "a tag key is missing"],
    ["cpu, f=1", 1, 5, "a tag key is missing"],
    ["cpu,host= f=1", 1, 10, 'the tag "host" has no value'],
    ["cpu,host=a=b f=1", 1, 11, "an unescaped '='"],
    ["cpu,a=1,a=2 f=1", 1, 9, 'the tag key "a" appears twice'],
    ["cpu f", 1, 6, "expected '=' after the field key \"f\""],
    ["cpu =1", 1, 5, "a field key is missing"],
    ["cpu f=", 1, 7, 'the field "f" has no value'],
    ["cpu f=,g=1", 1, 7, 'the field "f" has no value'],
    ["cpu f=1,", 1, 9, "a field key is missing"],
    ["cpu f=1, g=1", 1, 9, "a field key is missing"],
    ["cpu f=1,f=2", 1, 9, 'the field key "f" appears twice'],
    ['cpu s="open', 1, 7, "a string field value has no closing quote"],
    ['cpu s="a"b', 1, 10, 'unexpected character "b" after the field value'],
    ["cpu f=1\rnext f=2", 1, 8, "unexpected U+000D after the field value"],
    ["cp\u0000u f=1", 1, 3, "the measurement holds the control character U+0000"],
    ["cpu\tx f=1", 1, 4, "the measurement holds the control character tab"],
    ["cpu,h\u0001=a f=1", 1, 6, "a tag key holds the control character U+0001"],
    ["cpu,h=a\u007f f=1", 1, 8, "a tag value holds the control character U+007F"],
    ["cpu f\u001b=1", 1, 6, "a field key holds the control character U+001B"],
    ["\tcpu f=1", 1, 1, "the measurement holds the control character tab"],
    ["m f=1\nm f=2\n\nm,t f=3", 4, 4, "expected '=' after the tag key \"t\""],
    ['m s="a\nb" 1\nbad', 3, 4, "the point has no fields"],
    ['m f=1\nm s="a\nb', 2, 5, "a string field value has no closing quote"],
  ])("%j: line %i, column %i: %s", (text, line, column, reason) => {
    const err = refusal(text);
    expect([err.line, err.column]).toEqual([line, column]);
    expect(err.reason).toContain(reason);
    expect(err.message).toBe(`line ${line}, column ${column}: ${err.reason}`);
  });

  it("quotes a long bad value only in part", () => {
    const err = refusal(`m f=${"x".repeat(100_000)}`);
    expect(err.message.length).toBeLessThan(200);
  });
});

describe("bounded work on hostile input", () => {
  const MIB = 1024 * 1024;
  it.each([
    ["one huge measurement", `${"a".repeat(MIB)} f=1`],
    ["backslashes", "\\".repeat(MIB)],
    ["escaped spaces", `${"\\ ".repeat(MIB / 2)} f=1`],
    ["a huge integer", `m f=${"9".repeat(MIB)}i`],
    ["a huge integer of zeros", `m f=${"0".repeat(MIB)}1i`],
    ["a huge float", `m f=${"9".repeat(MIB)}`],
    ["a huge timestamp", `m f=1 ${"9".repeat(MIB)}`],
    ["an unclosed string", `m s="${"x".repeat(MIB)}`],
    ["many tags", `m${",k=v".repeat(MIB / 4)} f=1`],
    ["many fields", `m f0=1${",f=1".repeat(MIB / 4)}`],
    ["many quotes", `m s=${'"'.repeat(MIB)}`],
    ["many lines", "m f=1\n".repeat(MIB / 6)],
    ["many commas", `m ${",".repeat(MIB)}`],
  ])("%s: answers after reading each character a few times at most", async (_, text) => {
    // A parser that rescans (a line, a token) per character would read ~1e12 characters here.
    const reads = await charactersRead(() => {
      try {
        Array.from(parseLineProtocol(text));
      } catch (err) {
        expect(err).toBeInstanceOf(LineProtocolError);
      }
    });
    expect(reads).toBeLessThanOrEqual(8 * text.length);
  });
});

/** Characters that mean something in line protocol, and some that do not. */
const lineChars = fc.constantFrom(...' ,=\\"#\n\r\tmft.-+eEiuTF0123456789é☀\u0000'.split(""));
const lineText = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.array(lineChars, { maxLength: 80 }).map((chars) => chars.join("")),
);

describe("property: any text", () => {
  it("is parsed into well-formed points or refused by the parser, nothing else", () => {
    fc.assert(
      fc.property(lineText, (text) => {
        const lines = text.split("\n").length;
        try {
          for (const point of parseLineProtocol(text)) {
            expect(point.measurement).not.toBe("");
            expect(point.fields.length).toBeGreaterThan(0);
            expect(new Set(point.fields.map(([k]) => k)).size).toBe(point.fields.length);
            expect(new Set(point.tags.map(([k]) => k)).size).toBe(point.tags.length);
            expect(point.line).toBeGreaterThanOrEqual(1);
            expect(point.line).toBeLessThanOrEqual(lines);
          }
        } catch (err) {
          if (!(err instanceof LineProtocolError)) throw err;
          expect(err.line).toBeGreaterThanOrEqual(1);
          expect(err.line).toBeLessThanOrEqual(lines);
          expect(err.column).toBeGreaterThanOrEqual(1);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

// Names as the influx client takes them: not empty, and not ending with a backslash (which
// would escape the separator after it). A measurement cannot start with `#` (a comment).
const nameChars = fc.constantFrom(...' ,=\\"#abcxyzé☀01_-.'.split(""));
const name = fc
  .array(nameChars, { minLength: 1, maxLength: 12 })
  .map((chars) => chars.join(""))
  .filter((s) => !s.endsWith("\\"));
const measurement = name.filter((s) => !s.startsWith("#"));
const stringChars = fc.constantFrom(...' ,=\\"#\n\r\tabc☀'.split(""));
const INT_RANGE = { min: -(2n ** 63n), max: 2n ** 63n - 1n };

/** A field value as generated: a float's text is the parser's to find. */
type SentValue = Exclude<FieldValue, { type: "float" }> | { type: "float"; value: number };

const fieldValue: fc.Arbitrary<SentValue> = fc.oneof(
  fc
    .double({ noNaN: true, noDefaultInfinity: true })
    .filter((v) => !Object.is(v, -0))
    .map((value) => ({ type: "float" as const, value })),
  fc.maxSafeInteger().map((v) => ({ type: "integer" as const, value: BigInt(v) })),
  fc
    .bigInt({ min: 0n, max: 2n ** 64n - 1n })
    .map((value) => ({ type: "unsigned" as const, value })),
  fc.boolean().map((value) => ({ type: "boolean" as const, value })),
  fc
    .oneof(
      fc.string({ unit: "grapheme" }),
      fc.array(stringChars, { maxLength: 12 }).map((chars) => chars.join("")),
    )
    .map((value) => ({ type: "string" as const, value })),
);

const generatedPoint = fc.record({
  measurement,
  tags: fc.uniqueArray(fc.tuple(name, name), { selector: ([k]) => k, maxLength: 4 }),
  fields: fc.uniqueArray(fc.tuple(name, fieldValue), {
    selector: ([k]) => k,
    minLength: 1,
    maxLength: 4,
  }),
  timestamp: fc.option(fc.bigInt(INT_RANGE), { nil: undefined }),
});

type GeneratedPoint = typeof generatedPoint extends fc.Arbitrary<infer T> ? T : never;

/** The line the real influx client writes for a point. */
function clientLine(p: GeneratedPoint): string {
  const point = new Point(p.measurement);
  for (const [key, value] of p.tags) point.tag(key, value);
  for (const [key, field] of p.fields) {
    if (field.type === "float") point.floatField(key, field.value);
    if (field.type === "integer") point.intField(key, Number(field.value));
    if (field.type === "unsigned") point.uintField(key, String(field.value));
    if (field.type === "boolean") point.booleanField(key, field.value);
    if (field.type === "string") point.stringField(key, field.value);
  }
  if (p.timestamp !== undefined) point.timestamp(String(p.timestamp));
  const line = point.toLineProtocol({
    convertTime: (t) => (t === undefined ? undefined : String(t)),
  });
  if (line === undefined) throw new Error("the client wrote no line");
  return line;
}

const byKey = <T>(entries: readonly (readonly [string, T])[]) =>
  [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

describe("property: what the influx client writes", () => {
  it("reads back as the very points it was given", () => {
    fc.assert(
      fc.property(fc.array(generatedPoint, { minLength: 1, maxLength: 5 }), (points) => {
        const parsed = parse(points.map(clientLine).join("\n"));
        expect(parsed).toHaveLength(points.length);
        parsed.forEach((got, i) => {
          const sent = points[i];
          if (sent === undefined) throw new Error("fewer points sent than read");
          expect(got.measurement).toBe(sent.measurement);
          expect(byKey(got.tags)).toEqual(byKey(sent.tags));
          // A float's text, when the parser keeps it, is the one JavaScript writes for it.
          const fields = got.fields.map(([key, field]): [string, SentValue] => {
            if (field.type !== "float") return [key, field];
            if (field.text !== undefined) expect(field.text).toBe(String(field.value));
            return [key, { type: "float", value: field.value }];
          });
          expect(byKey(fields)).toEqual(byKey(sent.fields));
          expect(got.timestamp).toBe(sent.timestamp);
        });
      }),
      { numRuns: 1000 },
    );
  });
});
