import { createAuthenticator } from "../../edge/http/auth.ts";
import { loadConfig, type Config } from "../../shared/config.ts";
import type { Handler } from "../../edge/http/answer-requests.ts";
import { createIngestHandler } from "../../edge/json/ingest-handler.ts";
import type { Logger } from "../../shared/logger.ts";
import { silentLogger } from "./logger.ts";
import { createConnectionProvider, natsOptions } from "../../shared/nats-connection.ts";
import { createJetStreamPublisher } from "../../edge/publish/publisher.ts";
import { jsonSubject } from "../../shared/stream-setup.ts";

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
