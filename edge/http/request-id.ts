import { randomUUID } from "node:crypto";

const WELL_FORMED = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's `X-Request-Id` when it is well-formed, else a new one. */
export function requestIdOf(req: Request): string {
  const incoming = req.headers.get("x-request-id");
  return incoming !== null && WELL_FORMED.test(incoming) ? incoming : randomUUID();
}
