import { createAuthenticator } from "../../edge/http/auth.ts";
import { loadConfig, type Config } from "../../shared/config.ts";
import type { Handler } from "../../edge/http/answer-requests.ts";
import { createIngestHandler } from "../../edge/json/ingest-handler.ts";
import { createLogger, type Logger } from "../../shared/logger.ts";
import { createConnectionProvider, natsOptions } from "../../shared/nats-connection.ts";
import { createJetStreamPublisher } from "../../edge/publish/publisher.ts";
import { jsonSubject } from "../../shared/stream-setup.ts";

export const silentLogger = createLogger("test", "silent");

/** The configuration a test runs with: defaults, its private server, and its overrides. */
export function testConfig(natsUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({ NATS_URL: natsUrl, LOG_LEVEL: "silent", ...env });
}

/**
 * The real ingest handler, wired to a real NATS connection as the function wires it; `logger`
 * (silent unless given) is the handler's and the connection's.
 */
export function realIngestHandler(
  config: Config,
  logger: Logger = silentLogger,
): {
  handler: Handler;
  close: () => Promise<void>;
} {
  const connections = createConnectionProvider(natsOptions(config.nats, "test-ingest"), logger);
  const handler = createIngestHandler({
    publisher: createJetStreamPublisher(connections, { timeoutMs: config.nats.publishTimeoutMs }),
    authenticate: createAuthenticator({
      apiKeys: [],
      authMode: "none",
      isLocal: true,
      scope: "json",
    }),
    subject: jsonSubject(config.stream),
    logger,
  });
  return { handler, close: () => connections.close() };
}

/** A POST of `body` to the ingest endpoint. */
export function post(
  body: string | Uint8Array,
  headers: Record<string, string> = { "content-type": "application/json" },
): Request {
  return new Request("http://localhost/api/v1/metrics", { method: "POST", headers, body });
}
