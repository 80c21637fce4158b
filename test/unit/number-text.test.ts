import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isShortestNumberText } from "../../shared/number-text.ts";

const writtenBack = (text: string) => String(Number(text)) === text;

const digit = fc.constantFrom(...Array.from({ length: 10 }, (_, d) => String(d)));

/** Decimal texts as senders write them, canonical or not. */
const decimalText = fc
  .tuple(
    fc.constantFrom("", "-", "+"),
    fc.string({ unit: digit, minLength: 0, maxLength: 24 }),
    fc.option(fc.string({ unit: digit, maxLength: 20 }), {
      nil: undefined,
    }),
    fc.constantFrom("", "", "", "e3", "E-2", "e+1"),
  )
  .map(
    ([sign, integer, fraction, exponent]) =>
      `${sign}${integer}${fraction === undefined ? "" : `.${fraction}`}${exponent}`,
  );

describe("a number's text as JavaScript writes it", () => {
  it("is only ever said to be when String(Number(text)) gives it back", () => {
    const texts = fc.oneof(
      decimalText,
      fc.double({ noNaN: true }).map(String),
      fc
        .tuple(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: 0, max: 20 }))
        .map(([x, digits]) => x.toFixed(digits)),
      fc
        .tuple(fc.double({ noNaN: true }), fc.integer({ min: 1, max: 21 }))
        .map(([x, digits]) => x.toPrecision(digits)),
    );
    fc.assert(
      fc.property(texts, (text) => {
        if (isShortestNumberText(text)) expect(writtenBack(text), text).toBe(true);
      }),
      { numRuns: 20_000 },
    );
  });

  it("is recognised for every double of at most 15 digits in the range written without exponent", () => {
    const texts = fc
      .tuple(fc.double({ min: -1e21, max: 1e21, noNaN: true }), fc.integer({ min: 1, max: 15 }))
      .map(([x, digits]) => String(Number(x.toPrecision(digits))))
      .filter((text) => !text.includes("e") && text !== "0" && Math.abs(Number(text)) >= 1e-6);
    fc.assert(
      fc.property(texts, (text) => {
        // Integers of more than 15 digits are left to String (trailing zeros are counted).
        if (!text.includes(".") && text.replace("-", "").length > 15) return;
        expect(isShortestNumberText(text), text).toBe(true);
      }),
      { numRuns: 20_000 },
    );
  });

  it("reads only up to the end it is given", () => {
    expect(isShortestNumberText("12i", 2)).toBe(true);
    expect(isShortestNumberText("-0i", 2)).toBe(false);
    expect(isShortestNumberText("0.50i", 4)).toBe(false);
    for (const text of ["0", "1", "-1", "0.5", "-0.000001", "123456789012345", "0.1"]) {
      expect(isShortestNumberText(text), text).toBe(true);
    }
    for (const text of ["-0", "00", "01", ".5", "1.", "1.0", "0.0000001", "+1", "1e3", ""]) {
      expect(isShortestNumberText(text), text).toBe(false);
    }
  });
});
