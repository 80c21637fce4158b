import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TextBytes } from "../../shared/text-bytes.ts";

/** Texts of every size around the chunk size, in one- and two-byte characters and emoji. */
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc
    .tuple(fc.constantFrom("a", "é", "€", "😀"), fc.integer({ min: 1, max: 40_000 }))
    .map(([char, count]) => char.repeat(count)),
);

describe("TextBytes", () => {
  it("writes the UTF-8 bytes of the texts joined as one string", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            text.map((t) => ({ text: t })),
            fc.record({
              texts: fc.array(text, { maxLength: 300 }),
              separator: fc.constantFrom(",", "", ", "),
            }),
          ),
          { maxLength: 6 },
        ),
        (parts) => {
          const out = new TextBytes();
          let whole = "";
          for (const part of parts) {
            if ("text" in part) {
              out.push(part.text);
              whole += part.text;
            } else {
              out.pushJoined(part.texts, part.separator);
              whole += part.texts.join(part.separator);
            }
          }
          expect(out.bytes().equals(Buffer.from(whole, "utf8"))).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("joins thousands of short texts as join does, across chunks", () => {
    const column = Array.from({ length: 20_000 }, (_, i) => String(1_796_392_461_379 + i));
    const bytes = new TextBytes().push("[").pushJoined(column, ",").push("]").bytes();
    expect(bytes.toString("utf8")).toBe(`[${column.join(",")}]`);
    expect(bytes.length).toBeGreaterThan(128 * 1024);
  });
});
