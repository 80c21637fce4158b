import { gzipSync } from "node:zlib";
import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../../edge/http/errors.ts";
import { readBodyText as readBody } from "../../edge/http/read-body.ts";
import { postTo } from "../helpers/requests.ts";

const MIB = 1024 * 1024;

/** Each gunzip the reader asks for: the compressed bytes it read, and the most it may inflate. */
const inflations = vi.hoisted(
  () => [] as { inputBytes: number; maxOutputLength: number | undefined }[],
);
vi.mock("node:zlib", async (importOriginal) => {
  const zlib = await importOriginal<typeof import("node:zlib")>();
  const gunzip = (
    input: Uint8Array,
    options: import("node:zlib").ZlibOptions,
    callback: (err: Error | null, result: Buffer) => void,
  ) => {
    inflations.push({ inputBytes: input.byteLength, maxOutputLength: options.maxOutputLength });
    zlib.gunzip(input, options, callback);
  };
  return { ...zlib, gunzip };
});

const post = postTo("/api/v1/metrics");

/** The body's text, its pieces joined. */
async function readBodyText(req: Request, maxBytes: number): Promise<string> {
  const { pieces, bytes } = await readBody(req, maxBytes);
  const text = pieces.join("");
  expect(bytes).toBeGreaterThanOrEqual(Buffer.byteLength(text));
  return text;
}

const gzipped = (body: string | Uint8Array, headers: Record<string, string> = {}) =>
  post(gzipSync(body), { "content-encoding": "gzip", ...headers });

/** The ApiError the promise rejects with; fails the test when it resolves or rejects otherwise. */
async function refusal(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error("expected an ApiError, but the promise resolved");
}

/**
 * A streamed body of `chunkBytes`-byte chunks that never ends, counting what was pulled from
 * it and whether it was cancelled. It pulls nothing until a reader asks.
 */
function endlessBody(chunkBytes: number) {
  const seen = { pulls: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        seen.pulls++;
        controller.enqueue(new Uint8Array(chunkBytes).fill(0x61));
      },
      cancel() {
        seen.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, seen };
}

describe("readBodyText", () => {
  it("reads an identity body as UTF-8 text", async () => {
    const text = '{"data": {"value": 1, "name": "température ✓ 📈"}}';
    expect(await readBodyText(post(text), MIB)).toBe(text);
  });

  it("treats an explicit identity encoding like none", async () => {
    expect(await readBodyText(post("abc", { "content-encoding": "identity" }), MIB)).toBe("abc");
  });

  it("reads a gzip body, in any letter case of the encoding", async () => {
    const text = '{"data": [{"value": 1}, {"value": 2}]}';
    expect(await readBodyText(gzipped(text), MIB)).toBe(text);
    expect(await readBodyText(post(gzipSync(text), { "content-encoding": "GZip" }), MIB)).toBe(
      text,
    );
  });

  it("reads a gzip body of several members as their concatenation", async () => {
    const body = Buffer.concat([gzipSync("abc"), gzipSync("def")]);
    expect(await readBodyText(post(body, { "content-encoding": "gzip" }), MIB)).toBe("abcdef");
  });

  it("takes a gzip-labelled body without gzip's magic bytes as already inflated (netlify dev)", async () => {
    const text = '{"data": {"value": 1}}';
    expect(await readBodyText(post(text, { "content-encoding": "gzip" }), MIB)).toBe(text);
  });

  it("reads a request without a body as empty text", async () => {
    expect(await readBodyText(post(null), MIB)).toBe("");
  });

  it("drops a UTF-8 byte order mark", async () => {
    expect(await readBodyText(post(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])), MIB)).toBe("A");
  });
});

describe("the size limit", () => {
  const limit = 64;

  it.each([
    ["identity", (text: string) => post(text)],
    ["gzip", (text: string) => gzipped(text)],
  ])("accepts a %s body of exactly the limit and refuses one byte more", async (_, request) => {
    expect(await readBodyText(request("a".repeat(limit)), limit)).toHaveLength(limit);

    const err = await refusal(readBodyText(request("a".repeat(limit + 1)), limit));
    expect(err.code).toBe("body_too_large");
    expect(err.status).toBe(413);
    expect(err.message).toContain(String(limit));
  });

  it("applies the limit to a gzip-labelled body that arrives inflated", async () => {
    // The wire allows a little more for gzip, since gzip can be larger than what it holds.
    const err = await refusal(
      readBodyText(post("a".repeat(limit + 1), { "content-encoding": "gzip" }), limit),
    );
    expect(err.code).toBe("body_too_large");
  });

  it("counts bytes, not characters", async () => {
    const text = "é".repeat(limit / 2);
    expect(await readBodyText(post(text), limit)).toBe(text);
    expect((await refusal(readBodyText(post(`${text}a`), limit))).code).toBe("body_too_large");
  });

  it("refuses a body over the limit when it spans several chunks, and stops reading it", async () => {
    const { stream, seen } = endlessBody(1024);
    const err = await refusal(readBodyText(post(stream), 10 * 1024));
    expect(err.code).toBe("body_too_large");
    expect(seen.cancelled).toBe(true);
    expect(seen.pulls).toBeLessThanOrEqual(12);
  });

  it("refuses a declared Content-Length over the limit before reading anything", async () => {
    const { stream, seen } = endlessBody(1024);
    const err = await refusal(
      readBodyText(post(stream, { "content-length": String(MIB + 1) }), MIB),
    );
    expect(err.code).toBe("body_too_large");
    expect(err.status).toBe(413);
    expect(seen.pulls).toBe(0);
  });

  it("refuses a gzip body whose declared Content-Length is far over the limit", async () => {
    const { stream, seen } = endlessBody(1024);
    const headers = { "content-encoding": "gzip", "content-length": String(2 * MIB) };
    expect((await refusal(readBodyText(post(stream, headers), MIB))).code).toBe("body_too_large");
    expect(seen.pulls).toBe(0);
  });

  describe("a gzip bomb", () => {
    // 50 MB of zeros compress to about 50 KB.
    const bomb = gzipSync(Buffer.alloc(50 * 1000 * 1000));

    /** Refuses `body` with 413 and answers the inflations that took. */
    async function refusedAfter(body: Uint8Array) {
      inflations.length = 0;
      const err = await refusal(readBodyText(post(body, { "content-encoding": "gzip" }), MIB));
      expect(err.code).toBe("body_too_large");
      expect(err.status).toBe(413);
      return [...inflations];
    }

    it("of 50 MB is refused with 413, inflating no more than the limit", async () => {
      expect(bomb.byteLength).toBeLessThan(MIB / 10);
      // One inflation of the bytes sent, stopped by zlib at the limit.
      expect(await refusedAfter(bomb)).toEqual([
        { inputBytes: bomb.byteLength, maxOutputLength: MIB },
      ]);
    });

    it("of 1 GB in 20 gzip members, still under the wire limit, is refused without inflating it", async () => {
      const members = Buffer.concat(Array.from({ length: 20 }, () => bomb));
      expect(members.byteLength).toBeLessThan(MIB);
      // Inflating all of it would take seconds and a gigabyte of memory: at most 1 MiB is.
      expect(await refusedAfter(members)).toEqual([
        { inputBytes: members.byteLength, maxOutputLength: MIB },
      ]);
    });
  });
});

describe("refused bodies", () => {
  const hello = gzipSync("hello, world");

  it.each([
    ["truncated gzip", hello.subarray(0, hello.byteLength - 6)],
    ["a gzip header alone", hello.subarray(0, 10)],
    ["gzip's magic bytes followed by garbage", Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad])],
    ["a corrupted deflate stream", Buffer.concat([hello.subarray(0, 10), Buffer.alloc(20, 0xff)])],
    ["gzip followed by garbage", Buffer.concat([hello, Buffer.from("garbage")])],
  ])("refuses %s with 400 malformed_body", async (_, body) => {
    const err = await refusal(readBodyText(post(body, { "content-encoding": "gzip" }), MIB));
    expect(err.code).toBe("malformed_body");
    expect(err.status).toBe(400);
  });

  it.each(["br", "deflate", "compress", "x-gzip", "zstd", "gzip, gzip", "gzip, identity"])(
    "refuses Content-Encoding %j with 415 unsupported_encoding",
    async (encoding) => {
      const err = await refusal(readBodyText(post("{}", { "content-encoding": encoding }), MIB));
      expect(err.code).toBe("unsupported_encoding");
      expect(err.status).toBe(415);
    },
  );

  it("does not repeat a long Content-Encoding in full", async () => {
    const encoding = `x${"y".repeat(500)}`;
    const err = await refusal(readBodyText(post("{}", { "content-encoding": encoding }), MIB));
    expect(err.message.length).toBeLessThan(200);
  });

  it.each([
    ["a lone continuation byte", [0x7b, 0x80, 0x7d]],
    ["an invalid byte", [0x7b, 0xff, 0x7d]],
    ["an overlong encoding of '/'", [0xc0, 0xaf]],
    ["an encoded surrogate", [0xed, 0xa0, 0x80]],
    ["a sequence cut at the end", [0x41, 0xe2, 0x82]],
  ])("refuses invalid UTF-8 (%s) with 400 malformed_body", async (_, bytes) => {
    const err = await refusal(readBodyText(post(new Uint8Array(bytes)), MIB));
    expect(err.code).toBe("malformed_body");
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/UTF-8/);
  });

  it("refuses invalid UTF-8 inside a gzip body", async () => {
    const err = await refusal(readBodyText(gzipped(new Uint8Array([0x7b, 0xff, 0x7d])), MIB));
    expect(err.code).toBe("malformed_body");
  });
});
