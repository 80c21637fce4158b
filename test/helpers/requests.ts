import { expect } from "vitest";
import type { ErrorDetail } from "../../edge/http/errors.ts";
import type { ServeProcess } from "./serve.ts";

type Body = string | Uint8Array | ReadableStream<Uint8Array> | null;

/**
 * The POSTs to one endpoint of the handlers, as a host hands them over: `defaults` under the
 * headers each request is given.
 */
export function postTo(
  path: string,
  defaults: Readonly<Record<string, string>> = {},
): (body: Body, headers?: Record<string, string>) => Request {
  return (body, headers = {}) => {
    // A streamed body needs duplex: "half", which RequestInit's type does not know yet.
    const init: RequestInit & { duplex?: "half" } = {
      method: "POST",
      body,
      headers: { ...defaults, ...headers },
    };
    if (body instanceof ReadableStream) init.duplex = "half";
    return new Request(`http://localhost${path}`, init);
  };
}

/** A POST to the JSON API, `Content-Type: application/json` unless the headers say otherwise. */
export const post = postTo("/api/v1/metrics", { "content-type": "application/json" });

/** The API's one JSON error shape (`errorResponse` in edge/http/http-response.ts). */
export interface ErrorBody {
  status: string;
  error: { code: string; message: string; details?: ErrorDetail[] };
  requestId: string;
}

/** POSTs to the server and expects a 2xx (the answer's text says why when it is not). */
export async function postAccepted(
  serve: ServeProcess,
  path: string,
  body: string | Uint8Array,
  headers: Record<string, string>,
): Promise<void> {
  const res = await fetch(`${serve.base}${path}`, { method: "POST", headers, body });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
}
