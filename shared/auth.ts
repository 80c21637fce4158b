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

/**
 * How a key may be sent: `Authorization: Bearer <key>` everywhere, and `Authorization: Token
 * <key>` where an endpoint speaks InfluxDB's API, whose clients (Telegraf, the influx client
 * libraries) send the key that way and cannot be told otherwise.
 */
export type KeyScheme = "Bearer" | "Token";

/**
 * Checks a request's credentials; answers the error to send, or undefined to let it through.
 * `schemes` are the Authorization schemes the endpoint takes (default: Bearer only).
 */
export type Authenticator = (req: Request, schemes?: readonly KeyScheme[]) => ApiError | undefined;

const BEARER_ONLY: readonly KeyScheme[] = ["Bearer"];

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
  return (req, schemes = BEARER_ONLY) => {
    const presented = presentedKey(req.headers.get("authorization"), schemes);
    if (presented === undefined) {
      const forms = schemes.map((scheme) => `'Authorization: ${scheme} <key>'`).join(" or ");
      return new ApiError("unauthorized", `Send an API key as ${forms}.`);
    }
    const digest = sha256(presented);
    let match = false;
    // Every key is compared, so the time taken does not tell which one (if any) matched.
    for (const known of digests) match = timingSafeEqual(known, digest) || match;
    return match ? undefined : new ApiError("unauthorized", "The API key is not valid.");
  };
}

/** The key of an Authorization header in one of `schemes` (any letter case), else undefined. */
function presentedKey(header: string | null, schemes: readonly KeyScheme[]): string | undefined {
  const m = /^(\S+) +(\S+) *$/.exec(header ?? "");
  if (!m) return undefined;
  const scheme = m[1]?.toLowerCase();
  return schemes.some((known) => known.toLowerCase() === scheme) ? m[2] : undefined;
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
