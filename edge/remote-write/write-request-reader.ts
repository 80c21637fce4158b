/**
 * A remote write 1.0 `WriteRequest` read by hand, for the requests senders make: series of
 * labels and float samples, nothing else. protobuf-es's reflective reader made an object per
 * sample through the schema and a BigInt per timestamp, the largest cost of a remote-write
 * request at the edge; here each sample is two numbers read in place.
 *
 * Anything else in the bytes — metadata, exemplars, native histograms, a field this reader does
 * not know, a wire type other than the definition's, a string that is not UTF-8, a timestamp
 * outside ±2^48 ms, bytes that end early — makes it give up (undefined), and the request is
 * decoded by protobuf-es as before (`writeRequestOf`). So every request gets protobuf-es's
 * answer: this reader only ever returns what protobuf-es would have returned for the same bytes
 * (test/unit/write-request-reader.test.ts compares them), and returns nothing otherwise.
 */
import { BoundedMemo } from "../../shared/bounded-memo.ts";
import type { Steps } from "../../shared/cooperative.ts";
import {
  BIT64,
  GiveUp,
  LENGTH_DELIMITED,
  ProtobufReader as Reader,
  VARINT,
} from "../publish/protobuf-reader.ts";

/** What the edge reads of a `WriteRequest`; protobuf-es's `WriteRequest` has this shape too. */
export interface RemoteWriteBatch {
  readonly timeseries: readonly RemoteWriteSeries[];
  readonly metadata: readonly unknown[];
}

export interface RemoteWriteSeries {
  /** Never changed once read: the reader gives one list to every series with the same bytes. */
  readonly labels: readonly Label[];
  readonly samples: readonly { readonly value: number; readonly timestamp: bigint | number }[];
  readonly exemplars: readonly unknown[];
  readonly histograms: readonly unknown[];
}

interface Label {
  readonly name: string;
  readonly value: string;
}

/** Past this a timestamp is far outside 1970–9999 (which the schema refuses anyway). */
const MAX_TIMESTAMP_BYTES = 7; // 7 × 7 bits: below 2^49

const NONE: readonly never[] = [];

/**
 * The request in `bytes`, read series by series (`Steps`), or undefined when it holds anything
 * but labels and float samples, or is not well formed: then protobuf-es decides.
 */
export function* readWriteRequest(bytes: Uint8Array): Steps<RemoteWriteBatch | undefined> {
  const reader = new Reader(bytes);
  const timeseries: RemoteWriteSeries[] = [];
  try {
    while (reader.pos < bytes.length) {
      const end = reader.field(1, LENGTH_DELIMITED);
      timeseries.push(readSeries(reader, end));
      yield;
    }
  } catch (err) {
    if (err instanceof GiveUp) return undefined;
    throw err;
  }
  return { timeseries, metadata: NONE };
}

function readSeries(reader: Reader, end: number): RemoteWriteSeries {
  const samples: { value: number; timestamp: number }[] = [];
  // Each label's bytes, read once the series' end is known: from the label memo when they come
  // one after another, as senders write them.
  const labelEnds: number[] = [];
  let labelsFrom = -1;
  let labelsUntil = -1;
  let labelsApart = false;
  while (reader.pos < end) {
    const at = reader.pos;
    const [field, wireType] = reader.tag();
    if (wireType !== LENGTH_DELIMITED) throw new GiveUp();
    const until = reader.lengthEnd(end);
    if (field === 1) {
      if (labelsFrom === -1) labelsFrom = at;
      else if (labelsUntil !== at) labelsApart = true;
      labelEnds.push(reader.pos, until);
      labelsUntil = until;
      reader.pos = until;
    } else if (field === 2) samples.push(readSample(reader, until));
    else throw new GiveUp();
  }
  if (reader.pos !== end) throw new GiveUp();
  const read = () => readLabels(reader, labelEnds);
  const labels =
    labelsFrom === -1
      ? NONE
      : labelsApart
        ? read()
        : reader.kept(knownLabels, labelsFrom, labelsUntil, read);
  reader.pos = end;
  return { labels, samples, exemplars: NONE, histograms: NONE };
}

/**
 * Label lists read already, by their bytes (one character a byte): Prometheus sends the same
 * series request after request, and the same bytes always read as the same labels. A hit
 * skips decoding each name and value, and gives back the same list, by which the converter
 * finds what it made of it (remote-write.ts).
 */
const knownLabels = new BoundedMemo<readonly Label[]>(20_000);

/** The labels whose bytes lie at `ends` (start, end, start, end, …). */
function readLabels(reader: Reader, ends: readonly number[]): readonly Label[] {
  const labels: Label[] = [];
  for (let i = 0; i < ends.length; i += 2) {
    reader.pos = ends[i] as number;
    labels.push(readLabel(reader, ends[i + 1] as number));
  }
  return labels;
}

function readLabel(reader: Reader, end: number): Label {
  let name = "";
  let value = "";
  while (reader.pos < end) {
    const [field, wireType] = reader.tag();
    if (wireType !== LENGTH_DELIMITED) throw new GiveUp();
    const text = reader.text(reader.lengthEnd(end));
    // As protobuf does: a field given twice keeps its last value.
    if (field === 1) name = text;
    else if (field === 2) value = text;
    else throw new GiveUp();
  }
  if (reader.pos !== end) throw new GiveUp();
  return { name, value };
}

function readSample(reader: Reader, end: number): { value: number; timestamp: number } {
  let value = 0;
  let timestamp = 0;
  while (reader.pos < end) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === BIT64) value = reader.double(end);
    else if (field === 2 && wireType === VARINT) timestamp = timestampOf(reader, end);
    else throw new GiveUp();
  }
  if (reader.pos !== end) throw new GiveUp();
  return { value, timestamp };
}

/** A non-negative int64 below 2^49: every timestamp in range. Anything else gives up. */
function timestampOf(reader: Reader, end: number): number {
  let n = 0;
  let scale = 1;
  for (let i = 0; i < MAX_TIMESTAMP_BYTES && reader.pos < end; i++) {
    const byte = reader.bytes[reader.pos++] as number;
    n += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return n;
    scale *= 0x80;
  }
  throw new GiveUp();
}
