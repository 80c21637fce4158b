import { createHash, timingSafeEqual } from "node:crypto";
import { parseApiKeyEntry, type KeyScope } from "../../shared/api-keys.ts";
import { ApiError, type ErrorCode } from "./errors.ts";
import { checkRequestSource } from "./request-source.ts";

export type { KeyScope } from "../../shared/api-keys.ts";

/** What every endpoint's access check is made from. */
export interface AccessOptions {
  /** `INGEST_API_KEYS` entries: a key itself, or `sha256:<hex>` of it, and `@scopes`. */
  readonly apiKeys: readonly string[];
  /**
   * `INGEST_AUTH`, for when no key is configured: `none` accepts unauthenticated requests
   * anywhere; `local` accepts them as in local development, whatever address the server listens
   * on (a container whose port is published on the host's loopback); `required` accepts none;
   * unset accepts them only in local development.
   */
  readonly authMode: "none" | "local" | "required" | undefined;
  /** True under netlify dev, or a self-hosted server listening on loopback only. */
  readonly isLocal: boolean;
  /** `CORS_ALLOWED_ORIGINS`: the pages that may send requests; default none. */
  readonly corsOrigins?: readonly string[];
  /**
   * Told of every request refused for its key or its source (never of `auth_not_configured`),
   * to count and log them: the handlers themselves write no line for these.
   */
  readonly onRefused?: (req: Request, refusal: ApiError) => void;
}

export interface AuthOptions extends AccessOptions {
  /** The endpoint's scope: a key scoped to other endpoints is refused with 403. */
  readonly scope: KeyScope;
}

/**
 * How a key may be sent: `Authorization: Bearer <key>` everywhere, and `Authorization: Token
 * <key>` where an endpoint speaks InfluxDB's API, whose clients (Telegraf, the influx client
 * libraries) send the key that way and cannot be told otherwise.
 */
export type KeyScheme = "Bearer" | "Token";

/**
 * Checks where a request comes from and its credentials; answers the error to send, or
 * undefined to let it through. `schemes` are the Authorization schemes the endpoint takes
 * (default: Bearer only).
 */
export type Authenticator = (req: Request, schemes?: readonly KeyScheme[]) => ApiError | undefined;

/** Checks where a request comes from only: for an endpoint that asks for no key (health). */
export type SourceCheck = (req: Request) => ApiError | undefined;

/**
 * How requests are let in: with keys; without, for anyone (`INGEST_AUTH=none`); without, in
 * local development (loopback Host only); or not at all (no key configured outside local
 * development).
 */
export type AccessMode = "keys" | "open" | "local" | "unconfigured";

export function accessModeOf(options: AccessOptions): AccessMode {
  if (options.apiKeys.length > 0) return "keys";
  if (options.authMode === "none") return "open";
  if (options.authMode === "required") return "unconfigured";
  if (options.authMode === "local" || options.isLocal) return "local";
  return "unconfigured";
}

/** The codes of the refusals `onRefused` hears of: the handlers log none of them themselves. */
export const ACCESS_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "unauthorized",
  "insufficient_scope",
  "host_not_allowed",
  "origin_not_allowed",
]);

const BEARER_ONLY: readonly KeyScheme[] = ["Bearer"];

interface KnownKey {
  readonly digest: Buffer;
  readonly scopes: readonly KeyScope[] | undefined;
}

/** The access check of an ingest endpoint: where the request comes from, then its key. */
export function createAuthenticator(options: AuthOptions): Authenticator {
  const mode = accessModeOf(options);
  // The JSON API and the reads take requests from web pages (the live page reads); agents' do not.
  const checkSource = createSourceCheck(
    options,
    options.scope === "json" || options.scope === "read",
  );
  if (mode === "unconfigured") {
    const refusal = new ApiError(
      "auth_not_configured",
      "This ingest endpoint has no API keys configured; set INGEST_API_KEYS (or INGEST_AUTH=none to accept anyone).",
    );
    return () => refusal;
  }
  if (mode !== "keys") return (req) => checkSource(req);
  // Keys are kept only as digests, so comparing them takes the same time whatever they hold.
  const known: KnownKey[] = options.apiKeys.map((entry) => {
    const { secret, scopes } = parseApiKeyEntry(entry);
    const digest = secret.startsWith("sha256:")
      ? Buffer.from(secret.slice(7), "hex")
      : sha256(secret);
    return { digest, scopes };
  });
  const refused = (req: Request, refusal: ApiError) => {
    options.onRefused?.(req, refusal);
    return refusal;
  };
  return (req, schemes = BEARER_ONLY) => {
    const sourceRefusal = checkSource(req);
    if (sourceRefusal) return sourceRefusal;
    const presented = presentedKey(req.headers.get("authorization"), schemes);
    if (presented === undefined) {
      const forms = schemes.map((scheme) => `'Authorization: ${scheme} <key>'`).join(" or ");
      return refused(req, new ApiError("unauthorized", `Send an API key as ${forms}.`));
    }
    const digest = sha256(presented);
    let match: KnownKey | undefined;
    // Every key is compared, so the time taken does not tell which one (if any) matched.
    for (const key of known) {
      if (timingSafeEqual(key.digest, digest)) match ??= key;
    }
    if (match === undefined) {
      return refused(req, new ApiError("unauthorized", "The API key is not valid."));
    }
    if (match.scopes !== undefined && !match.scopes.includes(options.scope)) {
      return refused(
        req,
        new ApiError(
          "insufficient_scope",
          `This API key does not open this endpoint (scope ${options.scope}); it opens ${match.scopes.join(", ")}.`,
        ),
      );
    }
    return undefined;
  };
}

/**
 * The check of where a request comes from, for every endpoint: in local development only a
 * loopback Host; everywhere an `Origin` only where web pages may send (`takesBrowsers`), and
 * only from an allowed origin or the server's own.
 */
export function createSourceCheck(options: AccessOptions, takesBrowsers = true): SourceCheck {
  const rules = {
    loopbackOnly: accessModeOf(options) === "local",
    corsOrigins: options.corsOrigins ?? [],
    takesBrowsers,
  };
  return (req) => {
    const refusal = checkRequestSource(req, rules);
    if (refusal) options.onRefused?.(req, refusal);
    return refusal;
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
