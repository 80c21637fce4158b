import fc from "fast-check";

/**
 * Valid bytes damaged once: cut short at some byte, or one byte changed — to any value, or by
 * one bit, which turns a tag into a neighbouring field or wire type far more often than a byte
 * drawn at random does. For the hand-written protobuf readers, which must take no damaged
 * request protobuf-es refuses, and read any they take as protobuf-es does.
 */
export function damaged(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const change = fc.oneof(
    fc.integer({ min: 0, max: 255 }).map((byte) => () => byte),
    fc.integer({ min: 0, max: 7 }).map((bit) => (old: number) => old ^ (1 << bit)),
  );
  return fc
    .tuple(valid, fc.nat(), change, fc.boolean())
    .filter(([bytes]) => bytes.length > 0)
    .map(([bytes, at, changed, cut]) => {
      const copy = Uint8Array.from(bytes);
      const i = at % copy.length;
      if (cut) return copy.subarray(0, i);
      copy[i] = changed(copy[i] as number);
      return copy;
    });
}
