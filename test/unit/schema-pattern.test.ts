import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ANY_TEXT, schemaPattern, STORABLE_TEXT } from "../../shared/storable-text.ts";

/** Strings of any UTF-16 units, lone surrogates and NUL included, and of a few chosen ones. */
const texts = fc.oneof(
  fc.string({ unit: "binary" }),
  fc.string({ unit: fc.constantFrom("a", "\u0000", "\ud800", "\udc00", "😀", "\n", "é") }),
);

describe("schemaPattern", () => {
  it.each([STORABLE_TEXT, ANY_TEXT])("answers %s as the regular expression does", (pattern) => {
    const natively = schemaPattern(pattern, "u");
    const expression = new RegExp(pattern, "u");
    expect(natively).not.toBeInstanceOf(RegExp);
    fc.assert(
      fc.property(texts, (text) => {
        expect(natively.test(text)).toBe(expression.test(text));
      }),
      { numRuns: 20000 },
    );
  });

  it("refuses NUL, a lone surrogate of either half, and a pair reversed, as storable text", () => {
    const storable = schemaPattern(STORABLE_TEXT, "u");
    for (const text of ["a\u0000", "\ud800", "x\udc00", "\udc00\ud800"]) {
      expect(storable.test(text)).toBe(false);
    }
    expect(storable.test("😀 é")).toBe(true);
  });

  it("makes any other pattern a RegExp", () => {
    expect(schemaPattern("^[a-z]+$", "u")).toBeInstanceOf(RegExp);
    expect(schemaPattern(STORABLE_TEXT, "")).toBeInstanceOf(RegExp);
  });
});
