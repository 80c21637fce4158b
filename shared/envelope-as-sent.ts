/**
 * Writes the JSON API's messages: version 2, the request's metrics as one list, each metric's
 * JSON as the request held it. The edge has parsed and checked that text; writing it again
 * would cost as much as parsing it (bench/notes.md), and the worker reads the same metrics
 * from either. Version 3 (metrics in groups sharing tags, envelope-encoder.ts) saves bytes only
 * where consecutive metrics share tags, which the agent protocols' batches do and now write as
 * version 4.
 */
import type { RowKey } from "./envelope-schema.ts";
import { AS_SENT_ENVELOPE_VERSION } from "./envelope-version.ts";
import { TextBytes } from "./text-bytes.ts";

/** What a message says besides its metrics. */
export interface MessageHeader {
  readonly id: string;
  readonly receivedAt: number;
  readonly key: RowKey;
}

/**
 * A message of the metrics whose JSON is `texts` joined by commas: each text one or more whole
 * metrics, valid JSON the caller has checked (`parseMetrics`).
 */
export function encodeAsSent(header: MessageHeader, texts: readonly string[]): Buffer {
  const { id, receivedAt, key } = header;
  return new TextBytes()
    .push(
      `{"v":${AS_SENT_ENVELOPE_VERSION},"id":${JSON.stringify(id)},"receivedAt":${receivedAt},"key":${JSON.stringify(key)},"metrics":[`,
    )
    .pushJoined(texts, ",")
    .push("]}")
    .bytes();
}
