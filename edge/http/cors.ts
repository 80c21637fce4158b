import { originAllowed } from "./request-source.ts";

/**
 * CORS for browsers that send metrics from another origin. Off unless origins are configured
 * (`CORS_ALLOWED_ORIGINS`). Credentials are never allowed: the API authenticates with a bearer
 * key the page sends itself, so cookies have no business here.
 */
export interface Cors {
  /** The answer to a preflight (OPTIONS with Access-Control-Request-Method), else undefined. */
  preflight(req: Request): Response | undefined;
  /** Adds the CORS headers an allowed origin needs to read the response. */
  decorate(req: Request, res: Response): Response;
}

const ALLOWED_HEADERS = [
  "authorization",
  "content-type",
  "content-encoding",
  "idempotency-key",
  "traceparent",
  "x-request-id",
].join(", ");
const EXPOSED_HEADERS = "retry-after, x-request-id";

/** `allowedOrigins`: exact origins such as `https://app.example.com`, or `*` for any. */
export function createCors(allowedOrigins: readonly string[], methods: string): Cors {
  const anyOrigin = allowedOrigins.includes("*");
  // The value of Access-Control-Allow-Origin for a request's Origin, if it is allowed.
  const allowOrigin = (origin: string | null): string | undefined => {
    if (origin === null || !originAllowed(origin, allowedOrigins)) return undefined;
    return anyOrigin ? "*" : origin;
  };

  return {
    preflight(req) {
      const isPreflight =
        req.method === "OPTIONS" && req.headers.has("access-control-request-method");
      // With CORS off, OPTIONS is a method like any other: the handler answers 405.
      if (!isPreflight || allowedOrigins.length === 0) return undefined;
      const origin = allowOrigin(req.headers.get("origin"));
      const headers = new Headers({ vary: "Origin" });
      // A refused origin gets an answer without CORS headers, which the browser enforces.
      if (origin !== undefined) {
        headers.set("access-control-allow-origin", origin);
        headers.set("access-control-allow-methods", methods);
        headers.set("access-control-allow-headers", ALLOWED_HEADERS);
        headers.set("access-control-max-age", "600");
      }
      return new Response(null, { status: 204, headers });
    },
    decorate(req, res) {
      const origin = allowOrigin(req.headers.get("origin"));
      if (allowedOrigins.length > 0) res.headers.append("vary", "Origin");
      if (origin !== undefined) {
        res.headers.set("access-control-allow-origin", origin);
        res.headers.set("access-control-expose-headers", EXPOSED_HEADERS);
      }
      return res;
    },
  };
}

/** No origin allowed: what the handlers do when CORS is not configured. */
export const NO_CORS = createCors([], "");
