/**
 * Where a request comes from, checked before its key and before its body is read: which host
 * it was sent to (`Host`) and which web page sent it (`Origin`, which browsers add to every
 * cross-origin request and to every POST, and which a page cannot remove or forge).
 */
import { ApiError } from "./errors.ts";
import { isLoopbackHost } from "./loopback.ts";

export interface SourceRules {
  /**
   * Local development without keys: only requests sent to a loopback name or address are
   * taken, so that a page on another site cannot reach the server through DNS rebinding.
   */
  readonly loopbackOnly: boolean;
  /** `CORS_ALLOWED_ORIGINS`: the pages that may send requests (`*`: any). */
  readonly corsOrigins: readonly string[];
  /**
   * Whether the endpoint takes requests from web pages at all: the JSON API and health do;
   * the agent protocols' endpoints do not, so a key given to a browser opens the JSON API only.
   */
  readonly takesBrowsers: boolean;
}

/** Host header characters: a name, an IPv4 or a bracketed IPv6 address, and a port. */
const HOST_HEADER = /^[A-Za-z0-9._~-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/** The refusal of a request these rules do not take, else undefined. */
export function checkRequestSource(req: Request, rules: SourceRules): ApiError | undefined {
  const host = hostOf(req);
  if (rules.loopbackOnly && (host === undefined || !isLoopbackHost(host.hostname))) {
    return new ApiError(
      "host_not_allowed",
      "Without API keys this server is for local development: send requests to localhost, 127.0.0.1 or [::1].",
    );
  }
  const origin = req.headers.get("origin");
  if (origin === null) return undefined;
  if (!rules.takesBrowsers) {
    return new ApiError(
      "origin_not_allowed",
      "This endpoint is for agents and takes no requests from web pages (requests with an Origin header); pages may use POST /api/v1/metrics.",
    );
  }
  if (originAllowed(origin, rules.corsOrigins) || isSameOrigin(origin, host?.host))
    return undefined;
  return new ApiError(
    "origin_not_allowed",
    "Requests from this page's origin are not allowed; its origin must be listed in CORS_ALLOWED_ORIGINS.",
  );
}

/** True when `CORS_ALLOWED_ORIGINS` lets pages of `origin` send requests. */
export function originAllowed(origin: string, allowed: readonly string[]): boolean {
  return allowed.includes("*") || allowed.includes(origin);
}

/**
 * The host the request was sent to (`host`: with its port, if it named one), normalised as a
 * browser normalises it (letter case, IPv4 forms such as 127.1); undefined when it is not one.
 */
function hostOf(req: Request): { host: string; hostname: string } | undefined {
  const header = req.headers.get("host") ?? new URL(req.url).host;
  if (!HOST_HEADER.test(header)) return undefined;
  try {
    const { host, hostname } = new URL(`http://${header}`);
    return { host, hostname };
  } catch {
    return undefined;
  }
}

/** A page served by this very host: it may call its own API without being listed. */
function isSameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    const url = new URL(origin);
    return (url.protocol === "http:" || url.protocol === "https:") && url.host === host;
  } catch {
    return false;
  }
}
