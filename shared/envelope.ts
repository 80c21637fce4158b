import type { Envelope } from "./envelope-schema.ts";
import { ENVELOPE_VERSION } from "./envelope-version.ts";
import { validateEnvelope } from "./validators.ts";

export type { Envelope, RowKey } from "./envelope-schema.ts";
export { ENVELOPE_VERSION } from "./envelope-version.ts";

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  return Buffer.from(JSON.stringify(envelope));
}

/** Why a message can never be stored; also the last token of its dead-letter subject. */
export type PoisonReason = "undecodable" | "unknown_version" | "invalid_envelope";

export type Decoded =
  | { readonly ok: true; readonly envelope: Envelope }
  | { readonly ok: false; readonly reason: PoisonReason; readonly message: string };

/**
 * Reads a message from the stream, validating it with the same compiled schema as the edge:
 * a message that fails here can never be stored, however often it is delivered.
 */
export function decodeEnvelope(data: Uint8Array): Decoded {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch (err) {
    return { ok: false, reason: "undecodable", message: `not UTF-8 JSON: ${String(err)}` };
  }
  const version = (value as { v?: unknown } | null)?.v;
  // Version 1 is version 2 without `key`: every row keyed by message id and index.
  if (version === 1 && typeof value === "object" && value !== null && !("key" in value)) {
    value = { ...value, v: ENVELOPE_VERSION, key: "message" };
  } else if (version !== ENVELOPE_VERSION) {
    return {
      ok: false,
      reason: "unknown_version",
      message: `envelope version ${JSON.stringify(version)}`,
    };
  }
  if (!validateEnvelope(value)) {
    const first = validateEnvelope.errors?.[0];
    return {
      ok: false,
      reason: "invalid_envelope",
      message: `${first?.instancePath ?? ""} ${first?.message ?? "is invalid"}`.trim(),
    };
  }
  if (value.key === "series") {
    // A series key needs both parts of the identity; the edge always sets them.
    const index = value.metrics.findIndex((m) => m.name === undefined || m.timestamp === undefined);
    if (index >= 0) {
      return {
        ok: false,
        reason: "invalid_envelope",
        message: `/metrics/${index} has no name or no timestamp, which a series key needs`,
      };
    }
  }
  return { ok: true, envelope: value };
}
