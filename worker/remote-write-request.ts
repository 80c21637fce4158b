/**
 * A remote write 1.0 request body: a protobuf `WriteRequest`, compressed as one Snappy block
 * (the block format, not the framed one), as the specification asks.
 *
 * The protobuf is written by hand: a `WriteRequest` is three nested messages of two fields each
 * (proto/prometheus/remote.proto), and a generic encoder would make an object and a BigInt per
 * sample for what is a few bytes written in place. Sizes are counted first so the bytes are
 * written once into a buffer of the right length, and each label set's bytes are made once per
 * set of labels (the same series come back batch after batch). The unit tests read the bytes
 * back with the generated `@bufbuild/protobuf` schema.
 */
import { compress } from "snappyjs";
import type { Label, OutgoingSeries } from "./remote-write-labels.ts";

/** The headers every remote write 1.0 request carries, besides authentication. */
export function remoteWriteHeaders(userAgent: string): Record<string, string> {
  return {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": userAgent,
  };
}

/** The body of a request carrying `series`. */
export function encodeWriteRequest(series: readonly OutgoingSeries[]): Uint8Array {
  return compress(writeRequestBytes(series));
}

// Field keys: (field number << 3) | wire type (0 varint, 1 fixed 64 bits, 2 length-delimited).
const TIMESERIES = 0x0a; // WriteRequest.timeseries = 1
const LABELS = 0x0a; // TimeSeries.labels = 1
const SAMPLES = 0x12; // TimeSeries.samples = 2
const LABEL_NAME = 0x0a; // Label.name = 1
const LABEL_VALUE = 0x12; // Label.value = 2
const SAMPLE_VALUE = 0x09; // Sample.value = 1 (double)
const SAMPLE_TIMESTAMP = 0x10; // Sample.timestamp = 2 (int64)

/** The encoded `labels` fields of each label set seen, by the set's object. */
const labelBytes = new WeakMap<readonly Label[], Buffer>();

/** The uncompressed `WriteRequest` holding `series`. */
export function writeRequestBytes(series: readonly OutgoingSeries[]): Buffer {
  const labelsOf = series.map((s) => labelsBytes(s.labels));
  const seriesSize = series.map((s, i) => {
    let size = labelsOf[i]?.length ?? 0;
    for (const time of s.timestamps) {
      const sample = sampleSize(time);
      size += 1 + varintSize(sample) + sample;
    }
    return size;
  });
  let total = 0;
  for (const size of seriesSize) total += 1 + varintSize(size) + size;

  const out = Buffer.allocUnsafe(total);
  let at = 0;
  series.forEach((s, i) => {
    const size = seriesSize[i] ?? 0;
    out[at++] = TIMESERIES;
    at = writeVarint(out, at, size);
    const labels = labelsOf[i] ?? Buffer.alloc(0);
    labels.copy(out, at);
    at += labels.length;
    const { timestamps, values } = s;
    for (let j = 0; j < timestamps.length; j++) {
      const time = timestamps[j] ?? 0;
      out[at++] = SAMPLES;
      at = writeVarint(out, at, sampleSize(time));
      out[at++] = SAMPLE_VALUE;
      out.writeDoubleLE(values[j] ?? 0, at);
      at += 8;
      out[at++] = SAMPLE_TIMESTAMP;
      at = writeVarint(out, at, time);
    }
  });
  if (at !== total) throw new Error(`WriteRequest: wrote ${at} of ${total} bytes`);
  return out;
}

/** The `labels` fields of one TimeSeries, made once per label set. */
function labelsBytes(labels: readonly Label[]): Buffer {
  let bytes = labelBytes.get(labels);
  if (bytes === undefined) {
    const parts: Buffer[] = [];
    for (const { name, value } of labels) {
      const label = Buffer.concat([field(LABEL_NAME, name), field(LABEL_VALUE, value)]);
      parts.push(Buffer.from([LABELS]), varintBuffer(label.length), label);
    }
    bytes = Buffer.concat(parts);
    labelBytes.set(labels, bytes);
  }
  return bytes;
}

function field(key: number, text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  return Buffer.concat([Buffer.from([key]), varintBuffer(bytes.length), bytes]);
}

/** A Sample's bytes: its value (key and 8 bytes) and its timestamp (key and varint). */
function sampleSize(timeMs: number): number {
  return 1 + 8 + 1 + varintSize(timeMs);
}

/**
 * Bytes of an int64 as a protobuf varint. Timestamps are integers of milliseconds (at most
 * 2^53, far below 2^63); one before 1970 is negative, and takes ten bytes as two's complement.
 * Compared, not divided: a millisecond timestamp takes six bytes, and this runs twice a sample.
 */
function varintSize(n: number): number {
  if (n < 0) return 10;
  let size = 1;
  for (let limit = 0x80; n >= limit && size < 10; limit *= 0x80) size++;
  return size;
}

/**
 * Writes `n` as a varint at `at`, and returns where it ends. Past 2^31 (every timestamp of
 * this century) in two 32-bit halves, so that each byte is a bit operation, not a division.
 */
function writeVarint(out: Buffer, at: number, n: number): number {
  if (n < 0) {
    let u = BigInt.asUintN(64, BigInt(n));
    for (let i = 0; i < 9; i++) {
      out[at++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    out[at++] = Number(u);
    return at;
  }
  if (n < 0x80000000) {
    while (n >= 0x80) {
      out[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    out[at++] = n;
    return at;
  }
  let low = n >>> 0;
  let high = (n - low) / 0x100000000;
  // n ≥ 2^31 takes at least five bytes: four of the low half's 28 bits, then its last four
  // bits with the high half's first three.
  for (let i = 0; i < 4; i++) {
    out[at++] = (low & 0x7f) | 0x80;
    low >>>= 7;
  }
  const fifth = low | ((high & 0x07) << 4);
  high >>>= 3;
  if (high === 0) {
    out[at++] = fifth;
    return at;
  }
  out[at++] = fifth | 0x80;
  while (high >= 0x80) {
    out[at++] = (high & 0x7f) | 0x80;
    high >>>= 7;
  }
  out[at++] = high;
  return at;
}

function varintBuffer(n: number): Buffer {
  const out = Buffer.allocUnsafe(varintSize(n));
  writeVarint(out, 0, n);
  return out;
}
