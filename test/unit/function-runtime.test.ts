import { afterEach, describe, expect, it, vi } from "vitest";
import { netlifyFunction } from "../../edge/http/function-runtime.ts";

afterEach(() => {
  vi.restoreAllMocks();
});

/** A function whose handler, were it ever made, would say so. */
function functionOf(env: Record<string, string>) {
  const made = vi.fn(() => () => Promise.resolve(new Response(null, { status: 204 })));
  return { fn: netlifyFunction(made, env), made };
}

describe("a Netlify function started with a bad environment", () => {
  it("answers 500 configuration_error naming the variables, in the API's error shape", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const { fn, made } = functionOf({
      NATS_URL: "nats://127.0.0.1:4222",
      PUBLISH_TIMEOUT_MS: "soon",
    });

    const res = await fn(
      new Request("http://localhost/api/v1/metrics", {
        method: "POST",
        headers: { "x-request-id": "req-config-1" },
        body: "{}",
      }),
    );

    expect(res.status).toBe(500);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(res.headers.get("x-request-id")).toBe("req-config-1");
    expect(res.headers.get("retry-after")).toBeNull();
    expect(await res.json()).toEqual({
      status: "error",
      error: {
        code: "configuration_error",
        message: "The service is misconfigured: PUBLISH_TIMEOUT_MS: must be integer.",
      },
      requestId: "req-config-1",
    });
    expect(made).not.toHaveBeenCalled();
    expect(logged).toHaveBeenCalledTimes(1);
    expect(String(logged.mock.calls[0]?.[0])).toContain("PUBLISH_TIMEOUT_MS");
  });

  it("answers every request so, reading its environment once", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const { fn, made } = functionOf({ LOG_LEVEL: "loud", INGEST_AUTH: "sometimes" });
    for (let i = 0; i < 3; i++) {
      const res = await fn(new Request("http://localhost/api/v1/health"));
      expect(res.status).toBe(500);
      expect(((await res.json()) as { error: unknown }).error).toEqual({
        code: "configuration_error",
        message:
          "The service is misconfigured: INGEST_AUTH: must be one of none, local, required; LOG_LEVEL: must be one of trace, debug, info, warn, error, fatal, silent.",
      });
    }
    expect(made).not.toHaveBeenCalled();
    expect(logged).toHaveBeenCalledTimes(1);
  });
});
