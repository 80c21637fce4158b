/**
 * The pieces of a hand-written protobuf reader, for the messages senders make most, read in
 * place (edge/remote-write/write-request-reader.ts, edge/otlp/otlp-request-reader.ts). Anything
 * a reader does not expect — a field it does not know, another wire type, a string that is not
 * UTF-8, bytes that end early — throws `GiveUp`, and the caller decodes the request with
 * protobuf-es instead, so that every request still gets protobuf-es's answer.
 */

/** The reader met something it does not read: protobuf-es decides instead. */
export class GiveUp extends Error {}

export const VARINT = 0;
export const BIT64 = 1;
export const LENGTH_DELIMITED = 2;

import { MEMO_KEY_CHARS, type BoundedMemo } from "../../shared/bounded-memo.ts";

/** As protobuf-es reads strings: a leading U+FEFF is text, not a byte-order mark. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export class ProtobufReader {
  pos = 0;
  readonly bytes: Uint8Array;
  readonly #view: DataView;
  #buffer: Buffer | undefined;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** The bytes from `start` to `end`, a character each: a key for bytes seen before. */
  latin1(start: number, end: number): string {
    return this.buffer().toString("latin1", start, end);
  }

  /**
   * What `read` makes of the bytes from `start` to `end`, kept in `memo` by those bytes: the
   * same bytes always read the same. Past `MEMO_KEY_CHARS` bytes it is read each time.
   */
  kept<V>(memo: BoundedMemo<V>, start: number, end: number, read: () => V): V {
    return end - start > MEMO_KEY_CHARS ? read() : memo.get(this.latin1(start, end), read);
  }

  /** The bytes as a Buffer, without a copy (what protobuf-es reads `bytes` fields as). */
  buffer(): Buffer {
    const bytes = this.bytes;
    return (this.#buffer ??= Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  /** Reads a tag that must be `field` with `wireType` and a length; the end of its bytes. */
  field(field: number, wireType: number): number {
    const [number, type] = this.tag();
    if (number !== field || type !== wireType) throw new GiveUp();
    return this.lengthEnd(this.bytes.length);
  }

  tag(): [field: number, wireType: number] {
    const tag = this.varint32(this.bytes.length);
    return [tag >>> 3, tag & 7];
  }

  /** A length's end, which must fall within `end`. */
  lengthEnd(end: number): number {
    const length = this.varint32(end);
    const until = this.pos + length;
    if (until > end) throw new GiveUp();
    return until;
  }

  text(end: number): string {
    const bytes = this.bytes.subarray(this.pos, end);
    this.pos = end;
    try {
      return utf8.decode(bytes);
    } catch {
      throw new GiveUp();
    }
  }

  double(end: number): number {
    const at = this.#fixed64At(end);
    return this.#view.getFloat64(at, true);
  }

  fixed64(end: number): bigint {
    const at = this.#fixed64At(end);
    return this.#view.getBigUint64(at, true);
  }

  sfixed64(end: number): bigint {
    const at = this.#fixed64At(end);
    return this.#view.getBigInt64(at, true);
  }

  /** A varint of at most 32 bits (tags, lengths, enums, flags), within `end`. */
  varint32(end: number): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 5 && this.pos < end; i++) {
      const byte = this.bytes[this.pos++] as number;
      n += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (n > 0xffffffff) throw new GiveUp();
        return n;
      }
      scale *= 0x80;
    }
    throw new GiveUp();
  }

  #fixed64At(end: number): number {
    const at = this.pos;
    if (at + 8 > end) throw new GiveUp();
    this.pos = at + 8;
    return at;
  }
}
