import { existsSync } from "node:fs";
import { join } from "node:path";

/**
 * A nats-server binary on this machine: `NATS_SERVER_BIN`, else one on PATH, else where Debian
 * and hand installs put it, else the 2.10 that `npm run test:tools` fetches into `.tools/`.
 * Undefined when there is none.
 */
export function findNatsServerBinary(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  const candidates = [
    env["NATS_SERVER_BIN"],
    ...(env["PATH"] ?? "").split(":").map((dir) => join(dir, "nats-server")),
    "/usr/sbin/nats-server",
    "/usr/local/sbin/nats-server",
    join(import.meta.dirname, "..", ".tools", "nats-server", "nats-server"),
  ];
  return candidates.find((c) => c !== undefined && c !== "" && existsSync(c));
}
