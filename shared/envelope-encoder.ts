/**
 * Writes metrics as version 3 envelopes: consecutive metrics that share tags form a group that
 * carries those tags once, so a line's tag set, a series' labels or a resource's attributes
 * travel once per message instead of once per point. A metric's JSON is made once; a batch too
 * large for one broker message is cut into messages from those pieces without writing any of
 * it again. Nothing publishes this version any more (the JSON API writes version 2,
 * envelope-as-sent.ts; the agent protocols version 4, envelope-v4-encoder.ts): it stays to test
 * that the worker still reads it, and to measure against.
 */
import type { Steps } from "./cooperative.ts";
import type { Envelope, RowKey } from "./envelope-schema.ts";
import { GROUPS_ENVELOPE_VERSION } from "./envelope-version.ts";
import { REQUEST_LIMITS } from "./limits.ts";
import type { Metric } from "./metric-schema.ts";
import { pointIdentitiesOf, seriesMessageId } from "./series-identity.ts";
import { TextBytes } from "./text-bytes.ts";

/** A message as published: its id (`Nats-Msg-Id`) and its bytes. */
export interface EncodedMessage {
  readonly id: string;
  readonly data: Uint8Array;
  /** How many of the request's metrics it holds. */
  readonly metrics: number;
}

/** The JSON API's message, and what its metrics weigh. */
export interface EncodedRequest {
  readonly data: Uint8Array;
  /** Each metric's bytes as `JSON.stringify` writes it alone (the 64 KiB limit's measure). */
  readonly metricBytes: readonly number[];
}

/** The one message of `envelope` (the JSON API's: never split), however large. */
export function* encodeMessage(envelope: Envelope): Steps<EncodedRequest> {
  const groups = yield* encodeGroups(envelope.metrics);
  const slices = groups.map((group) => ({ group, from: 0, to: group.members.length }));
  const metricBytes = yield* metricBytesOf(groups, envelope.metrics);
  return { data: messageBytes(envelope, slices), metricBytes };
}

/**
 * Each metric's bytes as its own JSON: its member's, unless its group carries tags for it, which
 * its member then lacks: such a metric is written again, whole.
 */
function* metricBytesOf(
  groups: readonly EncodedGroup[],
  metrics: readonly Metric[],
): Steps<number[]> {
  const bytes: number[] = [];
  for (const group of groups) {
    for (let i = 0; i < group.members.length; i++) {
      bytes.push(
        group.sharesTags
          ? Buffer.byteLength(JSON.stringify(metrics[group.first + i]))
          : (group.memberBytes[i] as number),
      );
      yield;
    }
  }
  return bytes;
}

/**
 * The series-keyed messages of an agent's batch, in order, each at most `maxBytes` (a metric
 * that does not fit even alone goes alone, for the publisher to refuse) and holding at most a
 * request's metrics. Each message's id is a digest of its metrics' identities, so the same
 * batch sent again is cut into the same messages with the same ids.
 */
export function* encodeSeriesMessages(
  metrics: readonly Metric[],
  receivedAt: number,
  maxBytes: number,
): Steps<EncodedMessage[]> {
  const groups = yield* encodeGroups(metrics);
  const identities = yield* pointIdentitiesOf(metrics, receivedAt);
  // Every series id has one length: the header's size does not depend on which it is.
  const header = headerText({ id: seriesMessageId(identities), receivedAt, key: "series" });
  const parts = cut(groups, maxBytes - Buffer.byteLength(header) - CLOSING.length);
  const messages: EncodedMessage[] = [];
  for (const part of parts) {
    const first = part[0];
    const last = part.at(-1);
    if (first === undefined || last === undefined) continue;
    const start = first.group.first + first.from;
    const end = last.group.first + last.to;
    const id = seriesMessageId(identities, start, end);
    const data = messageBytes({ id, receivedAt, key: "series" }, part);
    messages.push({ id, data, metrics: end - start });
    yield;
  }
  return messages;
}

/** Consecutive metrics sharing the first tags of each (`opening` holds those), as JSON. */
interface EncodedGroup {
  /** `{"tags":{…},"metrics":[` with the shared tags, or `{"metrics":[` for none. */
  readonly opening: string;
  readonly openingBytes: number;
  /** Whether it carries tags for its metrics: then its members lack them. */
  readonly sharesTags: boolean;
  /** Each metric as JSON, with only the tags it adds to the group's. */
  readonly members: string[];
  readonly memberBytes: number[];
  /** The position of its first metric in the request. */
  readonly first: number;
}

/** Part of a group in one message: its members `from` up to (not including) `to`. */
interface GroupSlice {
  readonly group: EncodedGroup;
  readonly from: number;
  readonly to: number;
}

const CLOSING = "]}";
/**
 * Tags worth a group of their own: below this their JSON costs less than a group's own
 * punctuation would save.
 */
const SHARED_TAGS_MIN_BYTES = 64;

function* encodeGroups(metrics: readonly Metric[]): Steps<EncodedGroup[]> {
  const entries = new TagEntries();
  const groups: EncodedGroup[] = [];
  let current: { group: EncodedGroup; shared: readonly TagEntry[] | undefined } | undefined;
  const open = (shared: readonly TagEntry[] | undefined, first: number) => {
    const opening =
      shared === undefined
        ? `{"metrics":[`
        : `{"tags":${JSON.stringify(Object.fromEntries(shared))},"metrics":[`;
    const group = {
      opening,
      openingBytes: Buffer.byteLength(opening),
      sharesTags: shared !== undefined,
      members: [],
      memberBytes: [],
      first,
    };
    groups.push(group);
    current = { group, shared };
    return current;
  };

  for (const [index, metric] of metrics.entries()) {
    let member = metric;
    const own = metric.tags === undefined ? undefined : entries.of(metric.tags);
    let group = current;
    if (group?.shared !== undefined && own !== undefined && startsWith(own, group.shared)) {
      member = withTags(metric, own.slice(group.shared.length));
    } else {
      const shared = sharedPrefix(own, metrics[index + 1], entries);
      if (shared !== undefined) {
        group = open(shared, index);
        member = withTags(metric, (own ?? []).slice(shared.length));
      } else if (group === undefined || group.shared !== undefined) {
        group = open(undefined, index);
      }
    }
    const json = JSON.stringify(member);
    group.group.members.push(json);
    group.group.memberBytes.push(Buffer.byteLength(json));
    yield;
  }
  return groups;
}

type TagEntry = readonly [key: string, value: string];

/** Each tag set's entries, listed once per object: the metrics of a series share one. */
class TagEntries {
  readonly #byObject = new WeakMap<object, readonly TagEntry[]>();

  of(tags: Readonly<Record<string, string>>): readonly TagEntry[] {
    let list = this.#byObject.get(tags);
    if (list === undefined) {
      list = Object.entries(tags);
      this.#byObject.set(tags, list);
    }
    return list;
  }
}

/** The tags a metric shares, from the first, with the next one: worth a group, or undefined. */
function sharedPrefix(
  own: readonly TagEntry[] | undefined,
  next: Metric | undefined,
  entries: TagEntries,
): readonly TagEntry[] | undefined {
  if (own === undefined || next?.tags === undefined) return undefined;
  const other = entries.of(next.tags);
  let length = 0;
  while (length < own.length && length < other.length && sameEntry(own[length], other[length])) {
    length++;
  }
  if (length === 0) return undefined;
  const shared = own.slice(0, length);
  return Buffer.byteLength(JSON.stringify(Object.fromEntries(shared))) >= SHARED_TAGS_MIN_BYTES
    ? shared
    : undefined;
}

function startsWith(list: readonly TagEntry[], prefix: readonly TagEntry[]): boolean {
  if (list.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (!sameEntry(list[i], prefix[i])) return false;
  return true;
}

function sameEntry(a: TagEntry | undefined, b: TagEntry | undefined): boolean {
  return a !== undefined && b !== undefined && a[0] === b[0] && a[1] === b[1];
}

/**
 * The metric with only `rest` as its tags, `tags` kept where it stands among its fields, so
 * that the metric the worker puts back together is the one sent, down to the order of its
 * fields and tags.
 */
function withTags(metric: Metric, rest: readonly TagEntry[]): Metric {
  return { ...metric, tags: Object.fromEntries(rest) };
}

/**
 * The groups cut into messages of at most `maxBytes` of groups each: as many whole metrics as
 * fit, a group cut where a message ends going on in the next (with its tags again).
 */
function cut(groups: readonly EncodedGroup[], maxBytes: number): GroupSlice[][] {
  const parts: GroupSlice[][] = [];
  let part: GroupSlice[] = [];
  let bytes = 0;
  let count = 0;
  const endPart = () => {
    parts.push(part);
    part = [];
    bytes = 0;
    count = 0;
  };
  for (const group of groups) {
    let from = 0;
    while (from < group.members.length) {
      const opening = () => (part.length > 0 ? 1 : 0) + group.openingBytes + CLOSING.length;
      const first = group.memberBytes[from] ?? 0;
      const full = count === REQUEST_LIMITS.metricsPerRequest;
      if (part.length > 0 && (full || bytes + opening() + first > maxBytes)) endPart();
      bytes += opening() + first;
      count++;
      let to = from + 1;
      for (; to < group.members.length; to++) {
        const next = 1 + (group.memberBytes[to] ?? 0);
        if (bytes + next > maxBytes || count === REQUEST_LIMITS.metricsPerRequest) break;
        bytes += next;
        count++;
      }
      part.push({ group, from, to });
      if (to < group.members.length) endPart();
      from = to;
    }
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

function headerText(envelope: {
  readonly id: string;
  readonly receivedAt: number;
  readonly key: RowKey;
}): string {
  const { id, receivedAt, key } = envelope;
  return `{"v":${GROUPS_ENVELOPE_VERSION},"id":${JSON.stringify(id)},"receivedAt":${receivedAt},"key":${JSON.stringify(key)},"groups":[`;
}

/** A message's bytes: its header and its groups' slices, written in pieces (TextBytes). */
function messageBytes(
  envelope: { readonly id: string; readonly receivedAt: number; readonly key: RowKey },
  slices: readonly GroupSlice[],
): Buffer {
  const out = new TextBytes().push(headerText(envelope));
  slices.forEach(({ group, from, to }, i) => {
    if (i > 0) out.push(",");
    out.push(group.opening).pushJoined(group.members.slice(from, to), ",").push(CLOSING);
  });
  return out.push(CLOSING).bytes();
}
