import { createHash, type Hash } from "node:crypto";
import { BoundedMemo } from "./bounded-memo.ts";
import { runToEnd, type Steps } from "./cooperative.ts";
import type { Metric } from "./metric-schema.ts";
import { measurementTimeNsText } from "./timestamp.ts";

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
 * Each point's identity as a message id is made of: its series' digest (made once per series
 * of the request, not once per point) and its time in nanoseconds. Two points have the same
 * identity exactly when they have the same row key, at a fraction of its cost: no SHA-256 per
 * point.
 */
export function* seriesPointIds(metrics: readonly Metric[], receivedAtMs: number): Steps<string[]> {
  const series = new SeriesHashes();
  const ids: string[] = [];
  for (const metric of metrics) {
    ids.push(`${series.digestOf(metric)} ${measurementTimeNsText(metric.timestamp, receivedAtMs)}`);
    yield;
  }
  return ids;
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
 * A series' part of its points' ids (`seriesPointIds`), for a converter that keeps each series
 * once: a point's id is its series' digest, a space, and its time in nanoseconds. Each tag set
 * is sorted and written once, by object, however many names and requests share it.
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
 * The JetStream message id of a batch of agent metrics: a digest of its metrics' identities
 * (`seriesPointIds`), in order. An agent's retry of the same batch gets the same id, so within the stream's duplicate
 * window JetStream drops it instead of storing it twice; after the window, the rows' own keys
 * still keep it from adding anything.
 */
export function seriesMessageId(pointIds: readonly string[]): string {
  // The digest of the ids joined by newlines, fed a few hundred ids at a time: one string of
  // them all would be over 128 KB past ~2,000 points, and cost ~40x as much to make (shared/text-bytes.ts).
  const hash = createHash("sha256");
  for (let i = 0; i < pointIds.length; i += IDS_AT_ONCE) {
    if (i > 0) hash.update("\n");
    hash.update(pointIds.slice(i, i + IDS_AT_ONCE).join("\n"), "utf8");
  }
  return `s:${hash.digest("base64url")}`;
}

/** Point ids hashed at once: ~64 characters each, ~16 K in all. */
const IDS_AT_ONCE = 256;

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
