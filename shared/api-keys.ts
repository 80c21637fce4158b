/**
 * The entries of `INGEST_API_KEYS`: each a key, or `sha256:<64 hex digits>` of it, optionally
 * followed by `@` and the endpoints it opens (its scopes), e.g. `sha256:<hex>@json` or
 * `<key>@influx,otlp`, or `<key>@read` for a key that only reads. The list is comma-separated, and so is a scope list: a short lowercase
 * word after a scoped entry is one more of its scopes, never a key, because a key is at least
 * `MIN_KEY_LENGTH` characters. An entry without scopes opens every endpoint, reading included.
 */

/**
 * The endpoints a key may open: the JSON API, the three agent protocols, and reading back
 * (`read`: `GET /api/v1/series` and `/api/v1/query_range`).
 */
export const KEY_SCOPES = ["json", "influx", "otlp", "prom", "read"] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

/** The shortest plain key accepted; `npm run keygen` makes 43 characters (32 random bytes). */
export const MIN_KEY_LENGTH = 16;

export interface ApiKeyEntry {
  /** The key itself, or `sha256:<hex>` of it. */
  readonly secret: string;
  /** The endpoints it opens; undefined: all of them. */
  readonly scopes: readonly KeyScope[] | undefined;
}

const SCOPE_WORD = /^[a-z][a-z-]*$/;
const SHA256_ENTRY = /^sha256:[0-9a-fA-F]{64}$/;

/**
 * The comma-separated items of `INGEST_API_KEYS`, grouped into entries: an item that is a short
 * lowercase word following a scoped entry joins that entry's scope list.
 */
export function groupApiKeyItems(items: readonly string[]): string[] {
  const entries: string[] = [];
  for (const item of items) {
    const last = entries.at(-1);
    if (last?.includes("@") === true && isScopeWord(item)) {
      entries[entries.length - 1] = `${last},${item}`;
    } else {
      entries.push(item);
    }
  }
  return entries;
}

function isScopeWord(item: string): boolean {
  return item.length < MIN_KEY_LENGTH && SCOPE_WORD.test(item);
}

function isScope(text: string): text is KeyScope {
  return (KEY_SCOPES as readonly string[]).includes(text);
}

/** An entry's key and scopes; `apiKeyProblems` has checked it (unknown scopes are dropped). */
export function parseApiKeyEntry(entry: string): ApiKeyEntry {
  const at = entry.indexOf("@");
  if (at === -1) return { secret: entry, scopes: undefined };
  const scopes = entry
    .slice(at + 1)
    .split(",")
    .map((scope) => scope.trim())
    .filter(isScope);
  return { secret: entry.slice(0, at), scopes };
}

/**
 * What is wrong with the entries, one line each, naming entries by position and never quoting
 * them (they are secrets, or typed in the place of one).
 */
export function apiKeyProblems(entries: readonly string[]): string[] {
  const problems: string[] = [];
  entries.forEach((entry, i) => {
    const name = `INGEST_API_KEYS: entry ${i + 1}`;
    if (isScope(entry)) {
      problems.push(`${name} is a scope with no key before it (write <key>@${entry})`);
      return;
    }
    const at = entry.indexOf("@");
    const secret = at === -1 ? entry : entry.slice(0, at);
    if (secret.startsWith("sha256:")) {
      if (!SHA256_ENTRY.test(secret))
        problems.push(`${name} starts with sha256: but is not 64 hex digits`);
    } else if (secret.length < MIN_KEY_LENGTH) {
      problems.push(
        `${name} is shorter than ${MIN_KEY_LENGTH} characters; make keys with npm run keygen`,
      );
    }
    if (at === -1) return;
    const scopes = entry
      .slice(at + 1)
      .split(",")
      .map((scope) => scope.trim());
    if (!scopes.every(isScope)) {
      problems.push(
        `${name} names a scope that does not exist (after @); scopes are ${KEY_SCOPES.join(", ")}`,
      );
    }
  });
  return problems;
}
