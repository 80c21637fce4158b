/**
 * Envelope version 4: an agent batch (`key: "series"`) as binary columns, so that the edge
 * writes no JSON per point and the worker parses none. It holds exactly what version 3 holds;
 * the worker makes the same `Envelope` of it (shared/envelope-v4-decoder.ts).
 *
 * Byte layout, little-endian throughout (u8/u16/u32 unsigned integers, f64 IEEE 754 doubles):
 *
 * ```
 * header    u8  version (4)
 *           u8  key: 0 "message", 1 "series"
 *           u16 id length in bytes, then the id (UTF-8)
 *           f64 receivedAt, milliseconds since the epoch
 * strings   u32 count S; u32 × S each string's length in UTF-16 units; u32 blob length in
 *           bytes, then the blob: every string, one after the other, as UTF-8. Every name, tag
 *           key and value, field name, string field value, object or array field value (as
 *           JSON text) and time not written by `rfc3339FromNanos` is here once; the rest of the
 *           message refers to strings by index.
 * tag sets  u32 count T; each: u8 entries E (≤ 64), then E × (u32 key, u32 value) string indices
 * series    u32 count R (≤ 10,000); each: u32 name (string index + 1, 0 for none), u32 tag set
 *           (index + 1, 0 for none), u8 fields F (≤ 100), then F × (u32 field name, u8 kind,
 *           payload): kind 0 null, 1 false, 2 true, 3 number (f64), 4 string (u32 index),
 *           5 JSON object or array (u32 index of its text)
 * samples   u32 count N (1 to 10,000), then five columns of N entries each:
 *           u16 series index
 *           u8  time kind: 0 none, 1 integer milliseconds, 2 RFC 3339 text as
 *               `rfc3339FromNanos` writes it, 3 any other RFC 3339 text
 *           f64 kinds 1 and 2: the time in milliseconds; else 0
 *           u32 kind 2: nanoseconds past that millisecond (< 1,000,000); kind 3: the text's
 *               string index; else 0
 *           f64 value
 * ```
 *
 * A "series" here is what the metrics of a series share: name, tags and every field other than
 * `value` and `timestamp` (an `influx` object, OTLP's kind, unit, start time …). A metric with
 * a field of its own (a string field's text) gets a series entry of its own, sharing the tag
 * set. A message ends exactly after its last column.
 */

export const V4 = 4;

/** Bytes of one sample across the five columns. */
export const SAMPLE_BYTES = 2 + 1 + 8 + 4 + 8;

/** Series indices are u16. */
export const MAX_SERIES = 0xffff;

export const TIME = { none: 0, milliseconds: 1, canonical: 2, text: 3 } as const;

export const FIELD = { null: 0, false: 1, true: 2, number: 3, string: 4, json: 5 } as const;

export const KEYS = ["message", "series"] as const;
