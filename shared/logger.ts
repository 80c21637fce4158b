import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

/**
 * Structured JSON logs on stdout, one line per event. Nothing here logs request bodies, keys or
 * credentials; the redaction is a second line of defence for a header passed by mistake.
 */
export function createLogger(
  service: string,
  level: string,
  destination?: DestinationStream,
): Logger {
  const options = {
    level,
    base: { service },
    redact: {
      paths: ["authorization", "*.authorization", "headers.authorization"],
      censor: "[redacted]",
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
