import type { Envelope, EnvelopeV2, EnvelopeV3, MetricGroup } from "./envelope-schema.ts";
import { encodeAsSent } from "./envelope-as-sent.ts";
import { checkV4, metricsOfColumns, type ColumnsV4 } from "./envelope-v4-decoder.ts";
import { EXPANSION_LIMITS, METRIC_BOUNDS, REQUEST_LIMITS } from "./limits.ts";
import { withinBounds } from "./metric-bounds.ts";
import type { Metric } from "./metric-schema.ts";
import {
  validateEnvelopeV2,
  validateEnvelopeV2Frame,
  validateEnvelopeV3,
  validateMetric,
} from "./validators.ts";

export type { Envelope, RowKey } from "./envelope-schema.ts";
export { ENVELOPE_VERSION } from "./envelope-version.ts";

/**
 * One message holding `envelope`, as the JSON API writes it (version 2), however large. Agent
 * batches are written as version 4 (`encodeColumnsV4`, from their points in columns).
 */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  return encodeAsSent(
    envelope,
    envelope.metrics.map((metric) => JSON.stringify(metric)),
  );
}

/** Why a message can never be stored; also the last token of its dead-letter subject. */
export type PoisonReason = "undecodable" | "unknown_version" | "invalid_envelope";

export type Decoded =
  { readonly ok: true; readonly envelope: Envelope; readonly version: 1 | 2 | 3 | 4 } | Poison;

type Poison = { readonly ok: false; readonly reason: PoisonReason; readonly message: string };

/**
 * A message as `decodeMessage` reads it: a version 4 message stays in its columns, which the
 * worker makes rows of directly, without a metric object per point.
 */
export type DecodedMessage =
  | { readonly ok: true; readonly envelope: Envelope; readonly version: 1 | 2 | 3 }
  | { readonly ok: true; readonly columns: ColumnsV4; readonly version: 4 }
  | Poison;

/**
 * Reads a message from the stream, whichever version wrote it, validating it with the same
 * compiled schemas as the edge: a message that fails here can never be stored, however often
 * it is delivered.
 */
export function decodeEnvelope(data: Uint8Array): Decoded {
  const decoded = decodeMessage(data);
  if (!decoded.ok || decoded.version !== 4) return decoded;
  const { id, receivedAt, key } = decoded.columns;
  return {
    ok: true,
    envelope: { id, receivedAt, key, metrics: metricsOfColumns(decoded.columns) },
    version: 4,
  };
}

/** `decodeEnvelope`, with a version 4 message left in its columns (checked all the same). */
export function decodeMessage(data: Uint8Array): DecodedMessage {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch (err) {
    return { ok: false, reason: "undecodable", message: `not UTF-8 JSON: ${String(err)}` };
  }
  const version = (value as { v?: unknown } | null)?.v;
  if (version === 4) {
    const read = checkV4(value);
    if ("invalid" in read) return invalid(read.invalid);
    const { columns } = read;
    // Every point of version 4 has a time; a series key needs its series' name too. The series
    // are checked, and the points searched only for the message when one has none.
    if (columns.key === "series" && columns.series.some((s) => s.entry["name"] === undefined)) {
      const index = columns.points.series.findIndex(
        (s) => columns.series[s]?.entry["name"] === undefined,
      );
      if (index >= 0) return invalid(withoutIdentity(index));
    }
    return { ok: true, columns, version };
  }
  let read: { envelope: Envelope } | { invalid: string };
  // Version 1 is version 2 without `key`: every row keyed by message id and index.
  if (version === 1 && typeof value === "object" && value !== null && !("key" in value)) {
    read = readV2({ ...value, v: 2, key: "message" });
  } else if (version === 2) {
    read = readV2(value);
  } else if (version === 3) {
    read = readV3(value);
  } else {
    return {
      ok: false,
      reason: "unknown_version",
      message: `envelope version ${JSON.stringify(version)}`,
    };
  }
  if ("invalid" in read) return invalid(read.invalid);
  const { envelope } = read;
  if (envelope.key === "series") {
    // A series key needs both parts of the identity; the edge always sets them.
    const index = envelope.metrics.findIndex(
      (m) => m.name === undefined || m.timestamp === undefined,
    );
    if (index >= 0) return invalid(withoutIdentity(index));
  }
  return { ok: true, envelope, version };
}

const invalid = (message: string): Poison => ({ ok: false, reason: "invalid_envelope", message });

const withoutIdentity = (index: number) =>
  `metric ${index} has no name or no timestamp, which a series key needs`;

/**
 * A version 2 envelope: its frame by the schema, each metric by its bounds, which the JSON API's
 * metrics almost always pass (ajv's code walks each metric four times: ~13% of a worker's drain
 * of JSON API messages); the whole schema decides, and says what is wrong, when one does not.
 */
function readV2(value: unknown): { envelope: Envelope } | { invalid: string } {
  const checked =
    validateEnvelopeV2Frame(value) &&
    value.metrics.every(
      (metric) => withinBounds(metric, { keepTags: false }) !== undefined || validateMetric(metric),
    );
  if (!checked && !validateEnvelopeV2(value)) {
    return { invalid: schemaProblem(validateEnvelopeV2.errors) };
  }
  const { id, receivedAt, key, metrics } = value as EnvelopeV2;
  return { envelope: { id, receivedAt, key, metrics } };
}

/** A version 3 envelope with each metric made whole again: its group's tags, then its own. */
function readV3(value: unknown): { envelope: Envelope } | { invalid: string } {
  if (!validateEnvelopeV3(value)) return { invalid: schemaProblem(validateEnvelopeV3.errors) };
  const metrics: Metric[] = [];
  let sharedBytes = 0;
  for (const [g, group] of value.groups.entries()) {
    if (metrics.length + group.metrics.length > REQUEST_LIMITS.metricsPerRequest) {
      return { invalid: `holds more than ${REQUEST_LIMITS.metricsPerRequest} metrics` };
    }
    // What the group's tags become as stored, once for each of its metrics: the edge never
    // publishes more than a request may become (EXPANSION_LIMITS), nor does the worker store it.
    if (group.tags !== undefined) {
      sharedBytes += group.metrics.length * Buffer.byteLength(JSON.stringify(group.tags));
      if (sharedBytes > EXPANSION_LIMITS.maxBytes) {
        return {
          invalid: `its tags would take more than ${EXPANSION_LIMITS.maxBytes} bytes as stored`,
        };
      }
    }
    for (const [m, metric] of group.metrics.entries()) {
      const whole = withGroupTags(metric, group);
      if (whole === undefined) {
        return {
          invalid: `/groups/${g}/metrics/${m} has more than ${METRIC_BOUNDS.tagCount} tags with its group's`,
        };
      }
      metrics.push(whole);
    }
  }
  const { id, receivedAt, key } = value satisfies EnvelopeV3;
  return { envelope: { id, receivedAt, key, metrics } };
}

/**
 * The metric with its group's tags in front of its own, its `tags` where it has them; undefined
 * when that makes too many tags. A metric that adds none of its own shares the group's object.
 */
function withGroupTags(metric: Metric, group: MetricGroup): Metric | undefined {
  const shared = group.tags;
  if (shared === undefined) return metric;
  const own = metric.tags;
  let tags = shared;
  if (own !== undefined && Object.keys(own).length > 0) {
    tags = { ...shared, ...own };
    if (Object.keys(tags).length > METRIC_BOUNDS.tagCount) return undefined;
  }
  return { ...metric, tags };
}

function schemaProblem(errors: typeof validateEnvelopeV3.errors): string {
  const first = errors?.[0];
  return `${first?.instancePath ?? ""} ${first?.message ?? "is invalid"}`.trim();
}
