/**
 * A start-up failure the user can fix (a database that does not exist, a port already taken,
 * NATS not running): its message is one line saying what failed and what to do. It is printed as
 * that one line, without a stack trace, since stack traces are for bugs.
 */
export class StartupError extends Error {
  override readonly name = "StartupError";
}

/**
 * Runs a program's start. A `StartupError` ends the process with exit code 1 and one line on
 * stderr, `<program>: <message>`; any other error is a bug and keeps its stack trace.
 */
export async function startOrExit(program: string, start: () => Promise<void>): Promise<void> {
  try {
    await start();
  } catch (err) {
    if (!(err instanceof StartupError)) throw err;
    exitWith(program, err.message);
  }
}

/** Ends a process that cannot start: `<program>: <message>` on stderr, exit code 1. */
export function exitWith(program: string, message: string): never {
  process.stderr.write(`${program}: ${message}\n`);
  process.exit(1);
}

/**
 * Why a server could not listen, as a `StartupError` naming the variable that sets the port or
 * address; undefined for a failure a user cannot cause.
 */
export function listenStartupError(
  err: unknown,
  where: { host?: string; port: number; portVariable: string; hostVariable?: string },
): StartupError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  const address = `${where.host ?? ""}:${where.port}`;
  const hostVariable = where.hostVariable ?? "the address";
  switch (code) {
    case "EADDRINUSE":
      return new StartupError(
        `port ${where.port} is already in use: stop what holds it, or set ${where.portVariable} to another port`,
      );
    case "EACCES":
      return new StartupError(
        `not allowed to listen on ${address}: choose a port above 1023 with ${where.portVariable}`,
      );
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
      return new StartupError(
        `cannot listen on ${address}: no such address on this machine; check ${hostVariable}`,
      );
  }
  return undefined;
}
