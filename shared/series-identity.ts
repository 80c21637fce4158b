import { createHash, type Hash } from "node:crypto";
import { BoundedMemo } from "./bounded-memo.ts";
import { runToEnd, type Steps } from "./cooperative.ts";
import type { Metric } from "./metric-schema.ts";
import { measurementTimeNs, measurementTimeNsText } from "./timestamp.ts";

/**
 * The identity of an agent protocol's metric: its series (name and tags, in any order) and its
 * timestamp to the nanosecond — what InfluxDB and Prometheus deduplicate by. Two metrics with
 * the same identity are the same point, even with different values: the first stored stays.
 *
 * The key is a digest of `JSON.stringify([name, sorted tag entries, "<time in ns>"])`, so that
 * it fits a unique index whatever the tags hold.
 */
export function seriesRowKey(metric: Metric, receivedAtMs: number): string {
  return runToEnd(seriesRowKeys([metric], receivedAtMs))[0] ?? "";
}

/**
 * The row keys of `metrics`, in order, exactly as `seriesRowKey` makes each. A series' part of
 * the digest (its name and sorted tags, which may be many kilobytes) is hashed once for all
 * its points, which then add only their time: metrics of one series share one tag set.
 */
export function* seriesRowKeys(metrics: readonly Metric[], receivedAtMs: number): Steps<string[]> {
  const series = new SeriesHashes();
  const keys: string[] = [];
  for (const metric of metrics) {
    const time = measurementTimeNsText(metric.timestamp, receivedAtMs);
    const hash = series.of(metric).copy();
    keys.push(`s:${hash.update(`"${time}"]`, "latin1").digest("base64url")}`);
    yield;
  }
  return keys;
}

/**
 * The points of a message as its id (`seriesMessageId`) is made of them: per point, its
 * series (an index into `digests`, each a series' `seriesDigest`) and its time — whole
 * milliseconds `ms`, and `ns` nanoseconds past them (0 to 999,999; -1 is 0, as
 * `SeriesColumns` holds a time without nanoseconds).
 */
export interface PointIdentities {
  readonly digests: readonly string[];
  readonly seriesOf: ArrayLike<number>;
  readonly ms: ArrayLike<number>;
  readonly ns: ArrayLike<number>;
}

/**
 * The identities of `metrics` (`PointIdentities`), in order: each series' digest made once
 * however many points it has, each time as `measurementTimeNs` reads it.
 */
export function* pointIdentitiesOf(
  metrics: readonly Metric[],
  receivedAtMs: number,
): Steps<PointIdentities> {
  const hashes = new SeriesHashes();
  const indexes = new Map<string, number>();
  const digests: string[] = [];
  const seriesOf: number[] = [];
  const ms: number[] = [];
  const ns: number[] = [];
  for (const metric of metrics) {
    const digest = hashes.digestOf(metric);
    let index = indexes.get(digest);
    if (index === undefined) {
      index = digests.length;
      digests.push(digest);
      indexes.set(digest, index);
    }
    const time = measurementTimeNs(metric.timestamp, receivedAtMs);
    let whole = time / 1_000_000n;
    if (whole * 1_000_000n > time) whole -= 1n; // floored, for times before 1970
    seriesOf.push(index);
    ms.push(Number(whole));
    ns.push(Number(time - whole * 1_000_000n));
    yield;
  }
  return { digests, seriesOf, ms, ns };
}

/** The text every digest of a series' identity starts with: `[name, sorted tag entries,`. */
function seriesHashPrefix(
  name: string | null,
  tags: Readonly<Record<string, string>> | undefined,
): string {
  return `[${JSON.stringify(name)},${sortedTagsText(tags)},`;
}

function sortedTagsText(tags: Readonly<Record<string, string>> | undefined): string {
  const sorted = Object.entries(tags ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(sorted);
}

/**
 * A series' part of its points' identities (`PointIdentities`), for a converter that keeps each
 * series once. Each tag set is sorted and written once, by object, however many names and
 * requests share it.
 */
export function seriesDigest(
  name: string | null,
  tags: Readonly<Record<string, string>> | undefined,
): string {
  let tagsText = tags === undefined ? "[]" : sortedTagsTexts.get(tags);
  if (tagsText === undefined && tags !== undefined) {
    tagsText = sortedTagsText(tags);
    sortedTagsTexts.set(tags, tagsText);
  }
  const prefix = `[${JSON.stringify(name)},${tagsText as string},`;
  return knownDigests.get(prefix, () =>
    createHash("sha256").update(prefix, "utf8").digest("base64url"),
  );
}

/**
 * Each tag set's entries sorted, as JSON, by object: a converter's tag sets are never changed
 * once made, and one kept across requests (`seriesOf`) is sorted once for all of them.
 */
const sortedTagsTexts = new WeakMap<object, string>();

/**
 * Digests made already, by the text they digest. An agent sends the same series request after
 * request (a scrape, a flush interval): their SHA-256 is taken once, not once per request
 * (~5% of a line-protocol request's CPU, bench/notes.md). At most a few MB.
 */
const knownDigests = new BoundedMemo<string>(20_000);

/**
 * Each series' hash of `[name, sorted tag entries,` — the digest's text up to the time — made
 * once per name and tag set (by object: the metrics of a series share theirs).
 */
class SeriesHashes {
  readonly #byTags = new WeakMap<object, Map<string | null, Hash>>();
  readonly #untagged = new Map<string | null, Hash>();
  /** Each series' digest, by its hash: one per series however many points it has. */
  readonly #digests = new WeakMap<Hash, string>();

  digestOf(metric: Metric): string {
    const hash = this.of(metric);
    let digest = this.#digests.get(hash);
    if (digest === undefined) {
      digest = hash.copy().digest("base64url");
      this.#digests.set(hash, digest);
    }
    return digest;
  }

  of(metric: Metric): Hash {
    const name = metric.name ?? null;
    const byName = metric.tags === undefined ? this.#untagged : this.#namesOf(metric.tags);
    let hash = byName.get(name);
    if (hash === undefined) {
      hash = createHash("sha256").update(seriesHashPrefix(name, metric.tags), "utf8");
      byName.set(name, hash);
    }
    return hash;
  }

  #namesOf(tags: object): Map<string | null, Hash> {
    let byName = this.#byTags.get(tags);
    if (byName === undefined) {
      byName = new Map();
      this.#byTags.set(tags, byName);
    }
    return byName;
  }
}

/**
 * The JetStream message id of the points `start` up to `end` of `points`: a SHA-256 of their
 * identities, in order. An agent's retry of the same batch gets the same ids, so within the
 * stream's duplicate window JetStream drops it instead of storing it twice; after the window,
 * the rows' own keys still keep it from adding anything.
 *
 * What is digested: the number of the message's distinct series digests, those digests in the
 * order they first appear in it, then per point 16 bytes — that order's number of its series (32 bits), its
 * milliseconds (a float64, exact for every time the schema takes) and its nanoseconds past
 * them (32 bits), little-endian. Bytes rather than text: a point's id text cost more to make
 * than everything else its message id needs (bench/notes.md).
 */
export function seriesMessageId(points: PointIdentities, start = 0, end = start): string {
  // Each series' number in the message, by its index and by its digest: series that differ
  // in other fields (an InfluxDB field's type) but not in name and tags are one identity.
  const local = new Int32Array(points.digests.length).fill(-1);
  const byDigest = new Map<string, number>();
  const digests: string[] = [];
  const bytes = new DataView(new ArrayBuffer(4 + (end - start) * POINT_ID_BYTES));
  let at = 4;
  for (let i = start; i < end; i++) {
    const series = points.seriesOf[i] as number;
    let index = local[series] as number;
    if (index === -1) {
      const digest = points.digests[series] as string;
      index = byDigest.get(digest) ?? digests.length;
      if (index === digests.length) {
        digests.push(digest);
        byDigest.set(digest, index);
      }
      local[series] = index;
    }
    const ns = points.ns[i] as number;
    bytes.setUint32(at, index, true);
    bytes.setFloat64(at + 4, points.ms[i] as number, true);
    bytes.setUint32(at + 12, ns === -1 ? 0 : ns, true);
    at += POINT_ID_BYTES;
  }
  bytes.setUint32(0, digests.length, true);
  const hash = createHash("sha256").update(new Uint8Array(bytes.buffer, 0, 4));
  // Every digest is 43 characters: joined without a separator, they still read one way.
  hash.update(digests.join(""), "latin1");
  hash.update(new Uint8Array(bytes.buffer, 4));
  return `s:${hash.digest("base64url")}`;
}

const POINT_ID_BYTES = 16;

/**
 * The key of a metric's series in the stores' `series` table: a digest of the same canonical
 * form as `seriesRowKey` uses up to the time, `[name, sorted tag entries]`, so that tags in any
 * order, or spread over a version 3 group and its metric, name one series.
 */
export function seriesKey(name: string | null, tags: Readonly<Record<string, string>>): string {
  const sorted = Object.entries(tags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash("sha256")
    .update(`[${JSON.stringify(name)},${JSON.stringify(sorted)}]`, "utf8")
    .digest("base64url")
    .slice(0, 22);
}
