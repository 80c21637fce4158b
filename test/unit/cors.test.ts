import { describe, expect, it } from "vitest";
import { createAuthenticator } from "../../edge/http/auth.ts";
import { createCors } from "../../edge/http/cors.ts";
import { createIngestHandler } from "../../edge/json/ingest-handler.ts";
import { fakePublisher } from "../helpers/fake-publisher.ts";
import { silentLogger } from "../helpers/logger.ts";

const APP = "https://app.example.com";

function handlerWith(origins: string[]) {
  const publisher = fakePublisher();
  const handler = createIngestHandler({
    publisher,
    authenticate: createAuthenticator({
      apiKeys: ["k"],
      authMode: undefined,
      isLocal: false,
      scope: "json",
      corsOrigins: origins,
    }),
    subject: "metrics.json",
    logger: silentLogger,
    ...(origins.length > 0 ? { cors: createCors(origins, "POST") } : {}),
  });
  return { handler, publisher };
}

function preflight(origin: string): Request {
  return new Request("http://localhost/api/v1/metrics", {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type, authorization",
    },
  });
}

function postFrom(origin: string): Request {
  return new Request("http://localhost/api/v1/metrics", {
    method: "POST",
    headers: { origin, "content-type": "application/json", authorization: "Bearer k" },
    body: '{"data": {"value": 1}}',
  });
}

describe("CORS", () => {
  it("is off by default: a preflight is a 405, and a request from another origin a 403", async () => {
    const { handler, publisher } = handlerWith([]);
    const res = await handler(preflight(APP));
    expect(res.status).toBe(405);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const posted = await handler(postFrom(APP));
    expect(posted.status).toBe(403);
    expect(((await posted.json()) as { error: { code: string } }).error.code).toBe(
      "origin_not_allowed",
    );
    expect(posted.headers.get("access-control-allow-origin")).toBeNull();
    expect(publisher.published).toHaveLength(0);
  });

  it("takes a page's request to its own server (same origin) without listing it", async () => {
    const { handler } = handlerWith([]);
    const res = await handler(postFrom("http://localhost"));
    expect(res.status).toBe(202);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("answers a preflight from an allowed origin, without allowing credentials", async () => {
    const { handler, publisher } = handlerWith([APP]);
    const res = await handler(preflight(APP));
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(APP);
    expect(res.headers.get("access-control-allow-methods")).toBe("POST");
    expect(res.headers.get("access-control-allow-headers")).toContain("authorization");
    expect(res.headers.get("access-control-allow-headers")).toContain("idempotency-key");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    expect(res.headers.get("vary")).toContain("Origin");
    expect(publisher.published).toHaveLength(0);
  });

  it("gives another origin's preflight no CORS header, and its request a 403", async () => {
    const { handler, publisher } = handlerWith([APP]);
    const res = await handler(preflight("https://evil.example.net"));
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(res.headers.get("access-control-allow-methods")).toBeNull();
    expect((await handler(postFrom("https://evil.example.net"))).status).toBe(403);
    expect(publisher.published).toHaveLength(0);
  });

  it("lets an allowed origin read the answer, success or error, and its request id", async () => {
    const { handler } = handlerWith([APP]);
    const ok = await handler(postFrom(APP));
    expect(ok.status).toBe(202);
    expect(ok.headers.get("access-control-allow-origin")).toBe(APP);
    expect(ok.headers.get("access-control-expose-headers")).toContain("x-request-id");
    expect(ok.headers.get("access-control-allow-credentials")).toBeNull();

    const refused = await handler(
      new Request("http://localhost/api/v1/metrics", { method: "POST", headers: { origin: APP } }),
    );
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe(APP);
  });

  it("allows any origin with *, still without credentials", async () => {
    const { handler } = handlerWith(["*"]);
    const res = await handler(preflight("https://anywhere.example.org"));
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });
});
