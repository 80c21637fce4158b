import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { KEY_SCOPES } from "../../shared/api-keys.ts";
import { createAuthenticator, type AuthOptions, type KeyScope } from "../../edge/http/auth.ts";

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
    scope: "json",
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
    const authenticate = createAuthenticator({
      apiKeys: [],
      authMode: undefined,
      isLocal: false,
      scope: "json",
    });
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
    const authenticate = createAuthenticator({
      ...plain,
      authMode: undefined,
      isLocal: false,
      scope: "json",
    });
    const refusal = authenticate(request(authorization));
    expect(refusal?.code).toBe("unauthorized");
    expect(refusal?.status).toBe(401);
    expect(refusal?.message).not.toContain("key-one");
  });

  describe("where an endpoint takes InfluxDB's Token scheme too", () => {
    const influx = ["Token", "Bearer"] as const;
    const authenticate = createAuthenticator({
      ...plain,
      authMode: undefined,
      isLocal: false,
      scope: "json",
    });

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

describe("scoped keys", () => {
  const JSON_KEY = "json-only-key-0123";
  const AGENT_KEY = "agents-key-0123456";
  const ALL_KEY = "every-endpoint-key";
  const apiKeys = [`${sha256Entry(JSON_KEY)}@json`, `${AGENT_KEY}@influx,otlp`, ALL_KEY];
  const on = (scope: KeyScope, key: string) =>
    createAuthenticator({ apiKeys, authMode: undefined, isLocal: false, scope })(
      request(`Bearer ${key}`),
    );

  it("opens the endpoints its scopes name, and answers 403 insufficient_scope on the others", () => {
    expect(on("json", JSON_KEY)).toBeUndefined();
    for (const scope of ["influx", "otlp", "prom"] as const) {
      const refusal = on(scope, JSON_KEY);
      expect(refusal?.code, scope).toBe("insufficient_scope");
      expect(refusal?.status).toBe(403);
      expect(refusal?.message).toContain("opens json");
      expect(refusal?.message).not.toContain(JSON_KEY);
    }
    expect(on("influx", AGENT_KEY)).toBeUndefined();
    expect(on("otlp", AGENT_KEY)).toBeUndefined();
    expect(on("prom", AGENT_KEY)?.code).toBe("insufficient_scope");
    expect(on("json", AGENT_KEY)?.code).toBe("insufficient_scope");
  });

  it("opens every endpoint with an entry that names no scope", () => {
    for (const scope of KEY_SCOPES) expect(on(scope, ALL_KEY), scope).toBeUndefined();
  });

  it("still answers 401 to a wrong key, whatever the scopes", () => {
    for (const scope of KEY_SCOPES)
      expect(on(scope, "not-a-key-at-all-0")?.code).toBe("unauthorized");
  });
});

describe("where a request comes from", () => {
  const KEY = "browser-key-012345";
  const APP = "https://app.example.com";
  function answer(
    options: Partial<AuthOptions>,
    headers: Record<string, string>,
    url = "http://localhost:8080/api/v1/metrics",
  ): string {
    const authenticate = createAuthenticator({
      apiKeys: [],
      authMode: undefined,
      isLocal: true,
      scope: "json",
      ...options,
    });
    return authenticate(new Request(url, { method: "POST", headers }))?.code ?? "allowed";
  }

  describe("in local development (no key)", () => {
    it.each([
      "localhost",
      "localhost:8888",
      "127.0.0.1:8080",
      "127.9.9.9",
      "[::1]:8080",
      "LocalHost:1",
    ])("takes a request sent to %s", (host) => {
      expect(answer({}, { host })).toBe("allowed");
    });

    it.each([
      "attacker.example",
      "attacker.example:8080",
      "localhost.attacker.example",
      "192.0.2.2:8080",
      "0.0.0.0:8080",
      "ingest:8080",
      "localhost@attacker.example",
      "[::ffff:192.0.2.2]",
    ])("refuses a request sent to %s with 403 host_not_allowed", (host) => {
      expect(answer({}, { host })).toBe("host_not_allowed");
    });

    it("applies to every endpoint, and with INGEST_AUTH=local on any listening address", () => {
      for (const scope of KEY_SCOPES) {
        expect(answer({ scope }, { host: "attacker.example" }), scope).toBe("host_not_allowed");
      }
      expect(answer({ isLocal: false, authMode: "local" }, { host: "attacker.example" })).toBe(
        "host_not_allowed",
      );
      expect(answer({ isLocal: false, authMode: "local" }, { host: "localhost:8080" })).toBe(
        "allowed",
      );
    });

    it("refuses a page of another origin on every endpoint, before its key or body", () => {
      const page = { origin: "https://attacker.example", "content-type": "text/plain" };
      for (const scope of KEY_SCOPES)
        expect(answer({ scope }, page), scope).toBe("origin_not_allowed");
      expect(answer({}, { origin: "null" })).toBe("origin_not_allowed");
    });

    it("takes a page of an allowed origin, or of the server itself, on the JSON API only", () => {
      expect(answer({ corsOrigins: [APP] }, { origin: APP })).toBe("allowed");
      expect(answer({}, { origin: "http://localhost:8080" })).toBe("allowed");
      expect(answer({ scope: "influx", corsOrigins: [APP] }, { origin: APP })).toBe(
        "origin_not_allowed",
      );
    });

    it("does not check the Host with INGEST_AUTH=none (behind a proxy it is the public name)", () => {
      expect(answer({ authMode: "none" }, { host: "metrics.example.com" })).toBe("allowed");
      expect(answer({ authMode: "none" }, { origin: "https://attacker.example" })).toBe(
        "origin_not_allowed",
      );
    });
  });

  describe("with keys", () => {
    const keyed = { apiKeys: [KEY], isLocal: false, corsOrigins: [APP] };
    const auth = { authorization: `Bearer ${KEY}` };

    it("does not check the Host", () => {
      expect(answer(keyed, { ...auth, host: "metrics.example.com" })).toBe("allowed");
    });

    it("opens only the JSON API to a browser: a request with an Origin is refused elsewhere", () => {
      expect(answer(keyed, { ...auth, origin: APP })).toBe("allowed");
      for (const scope of ["influx", "otlp", "prom"] as const) {
        expect(answer({ ...keyed, scope }, { ...auth, origin: APP }), scope).toBe(
          "origin_not_allowed",
        );
        expect(answer({ ...keyed, scope }, auth), scope).toBe("allowed");
      }
    });

    it("refuses an origin that is not allowed, even with the right key", () => {
      expect(answer(keyed, { ...auth, origin: "https://attacker.example" })).toBe(
        "origin_not_allowed",
      );
      expect(
        answer({ ...keyed, corsOrigins: ["*"] }, { ...auth, origin: "https://x.example" }),
      ).toBe("allowed");
    });
  });
});

describe("refusals are reported, never the key", () => {
  it("tells onRefused of each 401 and 403, and of nothing else", () => {
    const heard: string[] = [];
    const options = {
      apiKeys: ["the-only-key-01234@json"],
      authMode: undefined,
      isLocal: false,
      corsOrigins: [],
      onRefused: (_: Request, refusal: { code: string }) => heard.push(refusal.code),
    };
    const json = createAuthenticator({ ...options, scope: "json" });
    const influx = createAuthenticator({ ...options, scope: "influx" });
    json(request("Bearer the-only-key-01234"));
    json(request("Bearer wrong-key-0123456789"));
    json(request());
    influx(request("Bearer the-only-key-01234"));
    json(
      new Request("http://localhost/", {
        headers: { origin: "https://attacker.example", authorization: "Bearer x" },
      }),
    );
    createAuthenticator({ ...options, apiKeys: [], scope: "json" })(request());
    expect(heard).toEqual([
      "unauthorized",
      "unauthorized",
      "insufficient_scope",
      "origin_not_allowed",
    ]);
  });
});
