import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createAuthenticator, type AuthOptions } from "../../shared/auth.ts";

function request(authorization?: string): Request {
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
  return new Request("http://localhost/api/v1/metrics", { method: "POST", headers });
}

const sha256Entry = (key: string) => `sha256:${createHash("sha256").update(key).digest("hex")}`;

/** The code of the refusal for a request with this Authorization header, or "allowed". */
function outcome(options: Partial<AuthOptions>, authorization?: string): string {
  const authenticate = createAuthenticator({
    apiKeys: [],
    authMode: undefined,
    isLocal: false,
    ...options,
  });
  return authenticate(request(authorization))?.code ?? "allowed";
}

describe("without API keys", () => {
  it("lets every request through when running locally", () => {
    expect(outcome({ isLocal: true })).toBe("allowed");
    expect(outcome({ isLocal: true }, "Bearer anything")).toBe("allowed");
  });

  it("lets every request through with INGEST_AUTH=none", () => {
    expect(outcome({ authMode: "none" })).toBe("allowed");
  });

  it("refuses every request elsewhere with 503 auth_not_configured saying how to fix it", () => {
    const authenticate = createAuthenticator({ apiKeys: [], authMode: undefined, isLocal: false });
    for (const authorization of [undefined, "Bearer some-key"]) {
      const refusal = authenticate(request(authorization));
      expect(refusal?.code).toBe("auth_not_configured");
      expect(refusal?.status).toBe(503);
      expect(refusal?.message).toContain("INGEST_API_KEYS");
    }
  });

  it("refuses every request with INGEST_AUTH=required, even locally", () => {
    expect(outcome({ authMode: "required", isLocal: false })).toBe("auth_not_configured");
    expect(outcome({ authMode: "required", isLocal: true })).toBe("auth_not_configured");
  });
});

describe("with API keys", () => {
  const plain = { apiKeys: ["key-one"] };

  it("accepts the key itself", () => {
    expect(outcome(plain, "Bearer key-one")).toBe("allowed");
  });

  it("accepts a key configured as sha256:<hex>, in either letter case of the hex", () => {
    expect(outcome({ apiKeys: [sha256Entry("hashed-key")] }, "Bearer hashed-key")).toBe("allowed");
    const upper = `sha256:${sha256Entry("hashed-key").slice(7).toUpperCase()}`;
    expect(outcome({ apiKeys: [upper] }, "Bearer hashed-key")).toBe("allowed");
  });

  it("does not accept the digest itself as the key", () => {
    const entry = sha256Entry("hashed-key");
    expect(outcome({ apiKeys: [entry] }, `Bearer ${entry}`)).toBe("unauthorized");
    expect(outcome({ apiKeys: [entry] }, `Bearer ${entry.slice(7)}`)).toBe("unauthorized");
  });

  it("accepts each of several keys, so keys can be rotated", () => {
    const rotation = { apiKeys: ["old-key", sha256Entry("new-key"), "third"] };
    expect(outcome(rotation, "Bearer old-key")).toBe("allowed");
    expect(outcome(rotation, "Bearer new-key")).toBe("allowed");
    expect(outcome(rotation, "Bearer third")).toBe("allowed");
    expect(outcome(rotation, "Bearer fourth")).toBe("unauthorized");
  });

  it.each(["bearer key-one", "BEARER key-one", "Bearer   key-one", "Bearer key-one  "])(
    "reads the scheme in any letter case and spacing: %j",
    (authorization) => {
      expect(outcome(plain, authorization)).toBe("allowed");
    },
  );

  it.each([
    ["no Authorization header", undefined],
    ["an empty header", ""],
    ["a wrong key", "Bearer key-two"],
    ["the key in another letter case", "Bearer KEY-ONE"],
    ["a prefix of the key", "Bearer key-on"],
    ["the key with more after it", "Bearer key-one2"],
    ["the scheme alone", "Bearer"],
    ["the scheme and a space", "Bearer "],
    ["the key without a scheme", "key-one"],
    ["another scheme", "Basic a2V5LW9uZQ=="],
    ["a token scheme", "Token key-one"],
    ["two words after the scheme", "Bearer key-one extra"],
    ["no space after the scheme", "Bearerkey-one"],
  ])("refuses %s with 401 unauthorized", (_, authorization) => {
    const authenticate = createAuthenticator({ ...plain, authMode: undefined, isLocal: false });
    const refusal = authenticate(request(authorization));
    expect(refusal?.code).toBe("unauthorized");
    expect(refusal?.status).toBe(401);
    expect(refusal?.message).not.toContain("key-one");
  });

  describe("where an endpoint takes InfluxDB's Token scheme too", () => {
    const influx = ["Token", "Bearer"] as const;
    const authenticate = createAuthenticator({ ...plain, authMode: undefined, isLocal: false });

    it.each(["Token key-one", "token key-one", "TOKEN  key-one", "Bearer key-one"])(
      "accepts %j",
      (authorization) => {
        expect(authenticate(request(authorization), influx)).toBeUndefined();
      },
    );

    it.each(["Token key-two", "Token", "Basic a2V5LW9uZQ==", "key-one", "Tokenkey-one"])(
      "refuses %j, naming both schemes",
      (authorization) => {
        const refusal = authenticate(request(authorization), influx);
        expect(refusal?.code).toBe("unauthorized");
        if (authorization !== "Token key-two") {
          expect(refusal?.message).toBe(
            "Send an API key as 'Authorization: Token <key>' or 'Authorization: Bearer <key>'.",
          );
        }
      },
    );

    it("leaves every other endpoint on Bearer alone", () => {
      expect(authenticate(request("Token key-one"))?.code).toBe("unauthorized");
      expect(authenticate(request())?.message).toBe(
        "Send an API key as 'Authorization: Bearer <key>'.",
      );
    });
  });

  it("still requires a key locally once keys are configured", () => {
    expect(outcome({ ...plain, isLocal: true })).toBe("unauthorized");
    expect(outcome({ ...plain, isLocal: true }, "Bearer key-one")).toBe("allowed");
  });

  it("accepts keys holding any visible characters", () => {
    const key = "k3y/with+symbols=and:colons";
    expect(outcome({ apiKeys: [key] }, `Bearer ${key}`)).toBe("allowed");
  });
});
