import { uncompress } from "snappyjs";
import { ApiError } from "../http/errors.ts";

/**
 * Decompresses one Snappy block (the block format, not the framed one: what Prometheus remote
 * write sends), refusing it with 413 when its header declares more than `maxBytes` — before any
 * memory is allocated for it — and with 400 when it is not a valid block.
 *
 * snappyjs does the decompressing, but it trusts its input: a copy whose length field is
 * negative as a 32-bit integer sends it back over the same bytes forever, and a block that ends
 * early comes back padded with zeros. So every element of the block is checked first (each
 * literal within the block, each copy within what was already written, the total exactly the
 * declared length), which takes one pass over the compressed bytes and allocates nothing.
 */
export function decodeSnappyBlock(block: Uint8Array, maxBytes: number): Uint8Array {
  const header = readUncompressedLength(block);
  if (header === undefined) throw malformed("its length header is missing or invalid");
  if (header.length > maxBytes) {
    throw new ApiError(
      "body_too_large",
      `The body declares ${header.length} bytes decompressed; the limit is ${maxBytes}.`,
    );
  }
  const problem = checkElements(block, header.start, header.length);
  if (problem !== undefined) throw malformed(problem);
  try {
    return uncompress(block, maxBytes);
  } catch (err) {
    // Not expected after the check above; still bad input, never a server error.
    throw malformed("it does not decompress", err);
  }
}

/** The varint at the start of a block: the uncompressed length, at most 2^32 - 1. */
function readUncompressedLength(block: Uint8Array): { length: number; start: number } | undefined {
  let length = 0;
  for (let i = 0; i < 5 && i < block.length; i++) {
    const byte = block[i] ?? 0;
    length += (byte & 0x7f) * 2 ** (7 * i);
    if (byte < 0x80) return length <= 0xffff_ffff ? { length, start: i + 1 } : undefined;
  }
  return undefined;
}

/** Why the block's elements do not produce exactly `length` bytes, or undefined when they do. */
function checkElements(block: Uint8Array, start: number, length: number): string | undefined {
  const end = block.length;
  /** A little-endian unsigned integer of `size` bytes at `at` (the caller checked the bounds). */
  const le = (at: number, size: number) => {
    let n = 0;
    for (let i = size - 1; i >= 0; i--) n = n * 256 + (block[at + i] ?? 0);
    return n;
  };
  let pos = start;
  let written = 0;
  while (pos < end) {
    const tag = block[pos] ?? 0;
    pos += 1;
    let size: number;
    if ((tag & 3) === 0) {
      // A literal: its length - 1 in the tag, or in the 1 to 4 bytes after it.
      let lengthMinusOne = tag >>> 2;
      if (lengthMinusOne >= 60) {
        const bytes = lengthMinusOne - 59;
        if (pos + bytes > end) return "it ends inside a literal's length";
        lengthMinusOne = le(pos, bytes);
        pos += bytes;
      }
      size = lengthMinusOne + 1;
      if (pos + size > end) return "a literal runs past the end of the body";
      pos += size;
    } else {
      // A copy of `size` bytes from `offset` bytes back in the output.
      const offsetBytes = [0, 1, 2, 4][tag & 3] ?? 0;
      if (pos + offsetBytes > end) return "it ends inside a copy";
      let offset: number;
      if (offsetBytes === 1) {
        size = 4 + ((tag >>> 2) & 7);
        offset = (tag >>> 5) * 256 + le(pos, 1);
      } else {
        size = (tag >>> 2) + 1;
        offset = le(pos, offsetBytes);
      }
      pos += offsetBytes;
      if (offset === 0 || offset > written) return "a copy refers to bytes before the start";
    }
    written += size;
    if (written > length) return `it holds more than the ${length} bytes its header declares`;
  }
  return written === length
    ? undefined
    : `it holds ${written} bytes, not the ${length} its header declares`;
}

function malformed(problem: string, cause?: unknown): ApiError {
  return new ApiError("malformed_body", `The body is not a valid Snappy block: ${problem}.`, {
    cause,
  });
}
