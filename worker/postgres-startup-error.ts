import { StartupError } from "../shared/startup-error.ts";

/**
 * Why the PostgreSQL store could not be opened, as one line that says what to do, for the
 * failures a user causes: the server not running or not reachable, the database missing, the
 * credentials refused, TLS refused. Anything else is not recognised (undefined) and stays an
 * error with its stack. `where` is `host:port/database`, never the URL (it may hold a password).
 */
export function postgresStartupError(err: unknown, where: string): StartupError | undefined {
  const { code, message } = err as { code?: unknown; message?: unknown };
  const text = typeof message === "string" ? message : String(err);
  const at = `PostgreSQL at ${where}`;
  switch (code) {
    case "3D000": {
      const name = /database "([^"]+)"/.exec(text)?.[1] ?? where.split("/")[1] ?? "";
      return new StartupError(
        `${at}: ${text}; create it (createdb ${name}) or point DATABASE_URL at one that exists`,
      );
    }
    case "28000":
    case "28P01":
      return new StartupError(
        `${at} refused the login: ${text}; check DATABASE_URL's user and password`,
      );
    case "42501":
      return new StartupError(
        `${at}: ${text}; the user of DATABASE_URL needs the right to create tables in the database`,
      );
    case "53300":
    case "57P03":
      return new StartupError(`${at} is not taking connections now: ${text}; try again shortly`);
    case "ECONNREFUSED":
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new StartupError(
        `cannot reach ${at} (${code}): is the server running? check DATABASE_URL's host and port`,
      );
  }
  if (/timeout/i.test(text) && /connect/i.test(text)) {
    return new StartupError(
      `cannot reach ${at} (no answer within the connection timeout): check DATABASE_URL's host and port`,
    );
  }
  if (/SSL|TLS|certificate/i.test(text)) {
    return new StartupError(`${at}: TLS failed: ${text}; check PG_SSL and PG_SSL_CA`);
  }
  return undefined;
}
