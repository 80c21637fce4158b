import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { createAuthenticator, type KeyScope } from "../../edge/http/auth.ts";
import { loadConfig } from "../../shared/config.ts";
import { PROJECT_ROOT } from "../helpers/processes.ts";

function keygen(): { key: string; entry: string; scoped: string } {
  const out = execFileSync(process.execPath, ["scripts/keygen.ts"], {
    cwd: PROJECT_ROOT,
  }).toString();
  const [, key = "", entry = "", scoped = ""] =
    /:\n {2}(\S+)\n[\s\S]*?:\n {2}(sha256:[0-9a-f]{64})\n[\s\S]*?:\n {2}(sha256:[0-9a-f]{64}@json)\n/.exec(
      out,
    ) ?? [];
  return { key, entry, scoped };
}

/** The refusal code (or "allowed") of `key` on the endpoint of `scope`, with `entry` configured. */
function outcome(entry: string, scope: KeyScope, key: string): string {
  const authenticate = createAuthenticator({
    apiKeys: loadConfig({ INGEST_API_KEYS: entry }).ingest.apiKeys,
    authMode: undefined,
    isLocal: false,
    scope,
  });
  const req = new Request("http://x", { headers: { authorization: `Bearer ${key}` } });
  return authenticate(req)?.code ?? "allowed";
}

describe("npm run keygen", () => {
  it("prints a key and the sha256: entry that accepts exactly that key", () => {
    const { key, entry } = keygen();
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(outcome(entry, "json", key)).toBe("allowed");
    expect(outcome(entry, "influx", key)).toBe("allowed");
    expect(outcome(entry, "json", `${key}x`)).toBe("unauthorized");
  });

  it("prints the same entry scoped to the JSON API, which the other endpoints refuse", () => {
    const { key, entry, scoped } = keygen();
    expect(scoped).toBe(`${entry}@json`);
    expect(outcome(scoped, "json", key)).toBe("allowed");
    for (const scope of ["influx", "otlp", "prom"] as const) {
      expect(outcome(scoped, scope, key)).toBe("insufficient_scope");
    }
  });

  it("prints a different key each time", () => {
    expect(keygen().key).not.toBe(keygen().key);
  });
});
