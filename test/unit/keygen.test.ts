import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { createAuthenticator } from "../../shared/auth.ts";
import { PROJECT_ROOT } from "../helpers/processes.ts";

function keygen(): { key: string; entry: string } {
  const out = execFileSync(process.execPath, ["scripts/keygen.ts"], {
    cwd: PROJECT_ROOT,
  }).toString();
  const [, key = "", entry = ""] =
    /:\n {2}(\S+)\n[\s\S]*:\n {2}(sha256:[0-9a-f]{64})\n/.exec(out) ?? [];
  return { key, entry };
}

describe("npm run keygen", () => {
  it("prints a key and the sha256: entry that accepts exactly that key", () => {
    const { key, entry } = keygen();
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const authenticate = createAuthenticator({
      apiKeys: [entry],
      authMode: undefined,
      isLocal: false,
    });
    const withKey = (k: string) =>
      authenticate(new Request("http://x", { headers: { authorization: `Bearer ${k}` } }));
    expect(withKey(key)).toBeUndefined();
    expect(withKey(`${key}x`)?.code).toBe("unauthorized");
  });

  it("prints a different key each time", () => {
    expect(keygen().key).not.toBe(keygen().key);
  });
});
