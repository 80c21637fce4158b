import { describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config.ts";
import { receiverTarget } from "../../worker/remote-write-store.ts";

describe("receiverTarget", () => {
  it("sends to the URL after remote-write+, with no credentials by default", () => {
    const { url, authorization } = receiverTarget(
      "remote-write+http://vm:8428/api/v1/write",
      undefined,
    );
    expect([url.toString(), authorization]).toEqual(["http://vm:8428/api/v1/write", undefined]);
  });

  it("takes basic auth from the URL's user information, which it then leaves out", () => {
    const { url, authorization } = receiverTarget(
      "remote-write+https://tenant%201:p%40ss@mimir.example.com/api/v1/push",
      undefined,
    );
    expect(url.toString()).toBe("https://mimir.example.com/api/v1/push");
    expect(authorization).toBe(`Basic ${Buffer.from("tenant 1:p@ss").toString("base64")}`);
  });

  it("sends REMOTE_WRITE_BEARER_TOKEN as a bearer token, before basic auth", () => {
    const { url, authorization } = receiverTarget(
      "remote-write+https://u:p@receive.example.com/api/v1/receive",
      "s3cret",
    );
    expect([url.username, authorization]).toEqual(["", "Bearer s3cret"]);
  });
});

describe("the configuration of remote write", () => {
  it("accepts remote-write+http(s):// URLs, the bearer token and a PEM CA only", () => {
    const config = loadConfig({
      DATABASE_URL: "remote-write+https://vm.example.com/api/v1/write",
      REMOTE_WRITE_BEARER_TOKEN: "s3cret",
    });
    expect(config.database.remoteWriteBearerToken).toBe("s3cret");
    expect(() => loadConfig({ DATABASE_URL: "remote-write+ftp://vm/api/v1/write" })).toThrow(
      /DATABASE_URL/,
    );
    expect(() =>
      loadConfig({
        DATABASE_URL: "remote-write+https://vm/api/v1/write",
        REMOTE_WRITE_CA: "not a certificate",
      }),
    ).toThrow(/REMOTE_WRITE_CA: is not a PEM certificate/);
  });
});
