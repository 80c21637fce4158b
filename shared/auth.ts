import { createHash, timingSafeEqual } from "node:crypto";
import { ApiError } from "./errors.ts";

export interface AuthOptions {
  /** `INGEST_API_KEYS` entries: a key itself, or `sha256:<hex>` of it. */
  readonly apiKeys: readonly string[];
  /**
   * `INGEST_AUTH`: `none` accepts unauthenticated requests anywhere; `required` demands a key
   * even in local development; unset demands one except in local development.
   */
  readonly authMode: "none" | "required" | undefined;
  /** True under netlify dev, or a self-hosted server listening on loopback only. */
  readonly isLocal: boolean;
}

/** Checks a request's credentials; answers the error to send, or undefined to let it through. */
export type Authenticator = (req: Request) => ApiError | undefined;

export function createAuthenticator(options: AuthOptions): Authenticator {
  if (options.apiKeys.length === 0) {
    const open =
      options.authMode === "none" || (options.isLocal && options.authMode !== "required");
    if (open) return () => undefined;
    const refusal = new ApiError(
      "auth_not_configured",
      "This ingest endpoint has no API keys configured; set INGEST_API_KEYS (or INGEST_AUTH=none to accept anyone).",
    );
    return () => refusal;
  }
  // Keys are kept only as digests, so comparing them takes the same time whatever they hold.
  const digests = options.apiKeys.map((entry) =>
    entry.startsWith("sha256:") ? Buffer.from(entry.slice(7), "hex") : sha256(entry),
  );
  return (req) => {
    const presented = bearerToken(req.headers.get("authorization"));
    if (presented === undefined) {
      return new ApiError("unauthorized", "Send an API key as 'Authorization: Bearer <key>'.");
    }
    const digest = sha256(presented);
    let match = false;
    // Every key is compared, so the time taken does not tell which one (if any) matched.
    for (const known of digests) match = timingSafeEqual(known, digest) || match;
    return match ? undefined : new ApiError("unauthorized", "The API key is not valid.");
  };
}

function bearerToken(header: string | null): string | undefined {
  const m = /^Bearer +(\S+) *$/i.exec(header ?? "");
  return m?.[1];
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
