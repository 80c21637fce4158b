import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { textPieces } from "../../edge/http/read-body.ts";
import { dataInPieces } from "../../edge/json/data-in-pieces.ts";
import { parseMetrics } from "../../edge/json/parse-metrics.ts";
import type { JsonEncoding } from "../../edge/json/parse-metrics.ts";
import { runToEnd } from "../../shared/cooperative.ts";
import { ApiError } from "../../edge/http/errors.ts";

/** JSON's whitespace, as a client may put it between tokens. */
const space = fc.constantFrom("", " ", "\n", "\t", "\r\n", "  ");

/**
 * Text of any characters but `}`: a string holding `},{` is where `dataInPieces` may give up
 * (its own test below).
 */
const text = (maxLength: number) =>
  fc.string({
    unit: fc.constantFrom("a", "0", " ", '"', "\\", "é", "😀", ",", "{", ":", "[", "]", "\n"),
    maxLength,
  });

/**
 * Keys: text that JSON writes without an escape. V8's `JSON.parse` (Node 24 and 26) reads an
 * escaped one-character key (`"\n"`, `"\""`) back as a backslash once any parse has met the key
 * `"\\"` (nodejs/node#63785): whole or in pieces, the same text may then parse two ways.
 */
const keyText = (maxLength: number) =>
  fc.string({
    unit: fc.constantFrom("a", "0", " ", "é", "😀", ",", "{", ":", "[", "]"),
    maxLength,
  });

/** A metric as clients write them: its tags anywhere among its fields. */
const metricLike = fc
  .tuple(
    fc.dictionary(keyText(4), fc.oneof(text(6), fc.double(), fc.boolean(), fc.constant(null)), {
      maxKeys: 4,
    }),
    fc.dictionary(keyText(4), text(6), { maxKeys: 3 }),
    fc.nat(4),
  )
  .map(([fields, tags, at]) => {
    const entries: [string, unknown][] = Object.entries(fields).filter(([key]) => key !== "tags");
    entries.splice(at % (entries.length + 1), 0, ["tags", tags]);
    return Object.fromEntries(entries);
  });

/** A `{"data": [...]}` body of `elements`, with whitespace where JSON allows it. */
const dataBodyOf = (elements: fc.Arbitrary<unknown>) =>
  fc
    .tuple(fc.array(elements, { maxLength: 30 }), space, space, space, space)
    .map(
      ([data, a, b, c, d]) =>
        `${a}{${b}"data"${c}:${d}[${data.map((v) => JSON.stringify(v, null, c.length % 2 === 0 ? 0 : 1)).join(`,${a}`)}]${b}}${c}`,
    );

/** Bodies of metrics, and of any JSON values. */
const metricsBody = dataBodyOf(metricLike);
const dataBody = fc.oneof(
  metricsBody,
  dataBodyOf(
    fc.jsonValue({
      maxDepth: 3,
      stringUnit: fc.constantFrom("a", " ", "é", "😀", "{", "}", ",", "["),
    }),
  ),
);

/**
 * Characters that matter to JSON's structure, and some that do not (one outside the BMP). No
 * backslash: an edit could make an escaped one-character key (see `keyText`).
 */
const STRUCTURE = ["[", "]", "{", "}", ",", '"', ":", " ", "a", "0", "-", "\n", "é", "😀"];

/** A body with a few characters that matter to JSON's structure put in, taken out or changed. */
const mangled = fc
  .tuple(
    dataBody,
    fc.array(fc.tuple(fc.nat(), fc.nat(2), fc.constantFrom(...STRUCTURE)), {
      minLength: 1,
      maxLength: 3,
    }),
  )
  .map(([body, edits]) => {
    let text = body;
    for (const [at, kind, char] of edits) {
      const i = text.length === 0 ? 0 : at % text.length;
      if (kind === 0) text = text.slice(0, i) + char + text.slice(i);
      else if (kind === 1) text = text.slice(0, i) + text.slice(i + 1);
      else text = text.slice(0, i) + char + text.slice(i + 1);
    }
    return text;
  });

/** What `JSON.parse` makes of the whole text, or undefined when it throws. */
function whole(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The body's metrics, or the refusal's code, message and details. */
function outcome(text: string | readonly string[], format: JsonEncoding): unknown {
  try {
    const pieces = typeof text === "string" ? [text] : text;
    const { metrics, texts } = runToEnd(parseMetrics(pieces, format));
    // The text the JSON API publishes holds exactly these metrics.
    expect(JSON.parse(`[${texts.join(",")}]`)).toStrictEqual(metrics);
    return { metrics };
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return { code: err.code, message: err.message, details: err.details };
  }
}

const pieceBytes = fc.integer({ min: 1, max: 80 });
const segmentChars = fc.integer({ min: 1, max: 200 });

describe("textPieces", () => {
  it("gives the text whole when joined, each piece from at most its bytes, cut after a line end", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 300 }), pieceBytes, (text, size) => {
        const pieces = textPieces(Buffer.from(text), size);
        expect(pieces.join("")).toBe(text);
        for (const piece of pieces.slice(0, -1)) {
          // A character cut between two pieces is read with the second: up to 3 bytes more.
          expect(Buffer.byteLength(piece)).toBeLessThanOrEqual(size + 3);
          if (piece.includes("\n")) expect(piece.endsWith("\n")).toBe(true);
        }
      }),
    );
  });

  it("refuses exactly the bytes that are not UTF-8, wherever they are cut", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 60 }), pieceBytes, (bytes, size) => {
        let expected: string | undefined;
        try {
          expected = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
        } catch {
          expected = undefined;
        }
        if (expected === undefined) {
          expect(() => textPieces(bytes, size)).toThrow(/not valid UTF-8/);
        } else {
          expect(textPieces(bytes, size).join("")).toBe(expected);
        }
      }),
    );
  });

  it("keeps a body of 1 MiB in pieces of at most 60 KiB", () => {
    const pieces = textPieces(Buffer.from(`${"x".repeat(1024 * 1024 - 1)}\n`));
    expect(pieces).toHaveLength(18);
    expect(Math.max(...pieces.map((p) => p.length))).toBe(60 * 1024);
  });
});

describe("dataInPieces", () => {
  it("parses every body of metrics in pieces as JSON.parse parses it whole", () => {
    fc.assert(
      fc.property(metricsBody, pieceBytes, segmentChars, (text, size, segment) => {
        const pieces = textPieces(Buffer.from(text), size);
        const parsed = dataInPieces(pieces, segment);
        expect(parsed?.data).toStrictEqual((JSON.parse(text) as { data: unknown }).data);
        expect(JSON.parse(`[${parsed?.runs.join(",")}]`)).toStrictEqual(parsed?.data);
      }),
      { numRuns: 50000 },
    );
  });

  it("gives up on a body JSON.parse refuses, or of another shape, and agrees on the rest", () => {
    fc.assert(
      fc.property(mangled, pieceBytes, segmentChars, (text, size, segment) => {
        const pieces = textPieces(Buffer.from(text), size);
        const parsed = dataInPieces(pieces, segment);
        if (parsed === undefined) return;
        expect({ data: parsed.data }).toStrictEqual(whole(pieces.join("")));
        expect(JSON.parse(`[${parsed.runs.join(",")}]`)).toStrictEqual(parsed.data);
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ["a comma too many at the end", '{"data": [1, 2, ]}'],
    ["a comma too many at the start", '{"data": [ , 1]}'],
    ["two commas", '{"data": [1,, 2]}'],
    ["a second data key", '{"data": [1], "data": [2]}'],
    ["another key", '{"data": [1], "x": 2}'],
    ["text after the object", '{"data": [1]} 2'],
    ["an array never closed", '{"data": [1, 2'],
    ["a brace closing the array", '{"data": [1, 2}'],
    ["a key before data", '{"x": 1, "data": [1]}'],
  ])("gives up on %s, cut anywhere", (_, text) => {
    for (let size = 1; size <= text.length; size++) {
      for (const segment of [1, 2, 5, 100]) {
        expect(dataInPieces(textPieces(Buffer.from(text), size), segment)).toBeUndefined();
      }
    }
  });

  it("gives up on metrics whose strings hold `},{`, and parseMetrics answers as for the whole", () => {
    const metrics = Array.from({ length: 40 }, (_, i) => ({
      name: "cpu",
      value: i,
      tags: { note: "a},{b", at: String(i) },
    }));
    const body = JSON.stringify({ data: metrics });
    const pieces = textPieces(Buffer.from(body), 64);
    expect(dataInPieces(pieces, 16)).toBeUndefined();
    expect(outcome(pieces, "json")).toStrictEqual({ metrics });
  });

  it("reads an empty data array", () => {
    expect(dataInPieces(['{"data":', " []}"], 1)).toStrictEqual({ data: [], runs: [""] });
  });
});

describe("parseMetrics in pieces", () => {
  const metric = fc.record(
    {
      name: fc.constantFrom("cpu", "mem", "é", 'a"b'),
      value: fc.double({ noNaN: true, noDefaultInfinity: true }),
      tags: fc.dictionary(fc.constantFrom("host", "dc", "x"), fc.string({ maxLength: 5 })),
    },
    { requiredKeys: ["value"] },
  );

  it("answers a JSON body in pieces as the same body whole, metrics or refusal", () => {
    const body = fc.oneof(
      fc.array(metric, { maxLength: 20 }).map((data) => JSON.stringify({ data })),
      mangled,
    );
    fc.assert(
      fc.property(body, pieceBytes, (text, size) => {
        const pieces = textPieces(Buffer.from(text), size);
        expect(outcome(pieces, "json")).toStrictEqual(outcome(pieces.join(""), "json"));
      }),
      { numRuns: 500 },
    );
  });

  it("answers an NDJSON body in pieces as the same body whole, line numbers included", () => {
    const line = fc.oneof(
      metric.map((m) => JSON.stringify(m)),
      fc.constantFrom("", "  ", "\r", "{", "not json", '{"value": "x"}'),
    );
    const body = fc
      .tuple(fc.array(line, { maxLength: 20 }), fc.constantFrom("\n", "\r\n"))
      .map(([lines, end]) => lines.join(end));
    fc.assert(
      fc.property(body, pieceBytes, (text, size) => {
        const pieces = textPieces(Buffer.from(text), size);
        expect(outcome(pieces, "ndjson")).toStrictEqual(outcome(pieces.join(""), "ndjson"));
      }),
      { numRuns: 500 },
    );
  });
});
