import { describe, expect, it } from "vitest";
import {
  apiKeyProblems,
  groupApiKeyItems,
  MIN_KEY_LENGTH,
  parseApiKeyEntry,
} from "../../shared/api-keys.ts";

const HASHED = `sha256:${"0f".repeat(32)}`;

describe("INGEST_API_KEYS entries", () => {
  it("reads a key and its scopes, or no scopes (every endpoint)", () => {
    expect(parseApiKeyEntry("plain-key-0123456789")).toEqual({
      secret: "plain-key-0123456789",
      scopes: undefined,
    });
    expect(parseApiKeyEntry(`${HASHED}@json`)).toEqual({ secret: HASHED, scopes: ["json"] });
    expect(parseApiKeyEntry("plain-key-0123456789@influx,otlp,prom")).toEqual({
      secret: "plain-key-0123456789",
      scopes: ["influx", "otlp", "prom"],
    });
  });

  it("groups the scope words after a scoped entry with it, and nothing else", () => {
    expect(
      groupApiKeyItems([`${HASHED}@influx`, "otlp", "plain-key-0123456789", "prom", "json"]),
    ).toEqual([`${HASHED}@influx,otlp`, "plain-key-0123456789", "prom", "json"]);
    // A lowercase word as long as a key is a key, even after a scoped entry.
    const lowercaseKey = "a".repeat(MIN_KEY_LENGTH);
    expect(groupApiKeyItems([`${HASHED}@json`, lowercaseKey])).toEqual([
      `${HASHED}@json`,
      lowercaseKey,
    ]);
  });

  it("finds nothing wrong with keys of 16 characters or more, hashed keys and known scopes", () => {
    expect(
      apiKeyProblems([
        "k".repeat(MIN_KEY_LENGTH),
        `${HASHED}@json,prom`,
        `sha256:${"0F".repeat(32)}`,
      ]),
    ).toEqual([]);
  });

  it("reports a short key, a bad digest, a scope alone and an unknown scope, by position", () => {
    expect(
      apiKeyProblems(["k".repeat(MIN_KEY_LENGTH - 1), "sha256:abc", "otlp", `${HASHED}@metrics`]),
    ).toEqual([
      "INGEST_API_KEYS: entry 1 is shorter than 16 characters; make keys with npm run keygen",
      "INGEST_API_KEYS: entry 2 starts with sha256: but is not 64 hex digits",
      "INGEST_API_KEYS: entry 3 is a scope with no key before it (write <key>@otlp)",
      "INGEST_API_KEYS: entry 4 names a scope that does not exist (after @); scopes are json, influx, otlp, prom, read",
    ]);
  });
});
