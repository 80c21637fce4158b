/**
 * OTLP attributes as a metric's tags: every value becomes a string, since tags are
 * string → string. Strings stay as they are, booleans and numbers are written as text, bytes in
 * base64 (as OTLP/JSON writes them), and arrays and key-value lists as JSON.
 */
import type {
  AnyValue,
  KeyValue,
} from "../../shared/gen/proto/opentelemetry/proto/common/v1/common_pb.js";

/** Adds `attributes` to `tags`, replacing the value of a key that is already there. */
export function addAttributes(tags: Map<string, string>, attributes: readonly KeyValue[]): void {
  for (const { key, value } of attributes) tags.set(key, attributeText(value));
}

/**
 * `attributes` as one text: the keys and texts `addAttributes` sets, in order, each preceded by
 * its length, so that two lists are one text exactly when they set the same tags.
 */
export function attributesKey(attributes: readonly KeyValue[]): string {
  let key = "";
  for (const { key: name, value } of attributes) {
    const text = attributeText(value);
    key += `${name.length}:${name}${text.length}:${text}`;
  }
  return key;
}

function attributeText(value: AnyValue | undefined): string {
  const v = value?.value;
  switch (v?.case) {
    case undefined:
      return "";
    case "stringValue":
      return v.value;
    case "boolValue":
    case "intValue":
    case "doubleValue":
      return String(v.value);
    case "bytesValue":
      return Buffer.from(v.value).toString("base64");
    case "arrayValue":
    case "kvlistValue":
      return JSON.stringify(plain(value));
  }
}

type Plain = null | boolean | number | string | Plain[] | { [key: string]: Plain };

/**
 * An AnyValue as plain JSON. Integers beyond 2^53 stay exact as decimal strings; a double that
 * JSON cannot hold (NaN, ±Infinity) is written as its name. The recursion is as deep as the
 * value, which the decoder's recursion limit bounds (`decodeRequest`).
 */
function plain(value: AnyValue | undefined): Plain {
  const v = value?.value;
  switch (v?.case) {
    case undefined:
      return null;
    case "stringValue":
    case "boolValue":
      return v.value;
    case "intValue":
      return exactNumber(v.value);
    case "doubleValue":
      return Number.isFinite(v.value) ? v.value : String(v.value);
    case "bytesValue":
      return Buffer.from(v.value).toString("base64");
    case "arrayValue":
      return v.value.values.map(plain);
    case "kvlistValue":
      // fromEntries defines own properties, so a key such as "__proto__" stays data.
      return Object.fromEntries(v.value.values.map((kv) => [kv.key, plain(kv.value)] as const));
  }
}

/** A 64-bit integer as a JSON number when that is exact, else as a decimal string. */
export function exactNumber(n: bigint): number | string {
  return n >= -MAX_SAFE && n <= MAX_SAFE ? Number(n) : n.toString();
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
