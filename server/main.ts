/**
 * The self-hosted ingest server (`npm run serve`): the same ingest and health handlers as the
 * Netlify functions, behind a plain Node HTTP server on HOST:PORT. This file wires the parts
 * together and owns the process's lifecycle.
 */
import { accessModeOf } from "../edge/http/auth.ts";
import { loadConfigOrExit } from "../shared/config.ts";
import { onStopSignals } from "../shared/stop-signals.ts";
import { listenStartupError, startOrExit } from "../shared/startup-error.ts";
import { createHandlers } from "../edge/http/handlers.ts";
import { createLogger } from "../shared/logger.ts";
import { startHttpServer } from "./http-server.ts";
import { isLoopbackHost } from "../edge/http/loopback.ts";
import { createRouter } from "./router.ts";
import { isPoolProcess, onPoolStop, runProcessPool } from "./process-pool.ts";

/** How long the requests in flight may take to finish after a stop signal. */
const IN_FLIGHT_DEADLINE_MS = 10_000;
/** How long draining the NATS connection may take after that. */
const DRAIN_DEADLINE_MS = 5_000;

async function main(): Promise<void> {
  const config = loadConfigOrExit("ingest server");
  const logger = createLogger("ingest-server", config.logLevel);
  const { host, port, requestTimeoutMs, processes } = config.ingest;
  if (processes > 1 && !isPoolProcess()) {
    process.exit(await runProcessPool(processes, logger));
  }
  // Listening on loopback only, the server is local development for authentication.
  const isLocal = isLoopbackHost(host);
  const handlers = createHandlers(config, {
    isLocal,
    logger,
    connectionName: "metrics-ingest-server",
    // srvx's request knows the connection's peer address (forwarding headers are not trusted).
    clientAddress: (req) => (req as { ip?: string }).ip,
  });

  const server = await startHttpServer({
    host,
    port,
    requestTimeoutMs,
    handler: createRouter(handlers),
    logger,
  }).catch((err: unknown) => {
    throw (
      listenStartupError(err, { host, port, portVariable: "PORT", hostVariable: "HOST" }) ?? err
    );
  });
  const { address } = server;
  // keys, open (INGEST_AUTH=none), local (no key, loopback Host only) or unconfigured.
  const access = accessModeOf({ ...config.ingest, isLocal });
  logger.info({ host: address.address, port: address.port, access, requestTimeoutMs }, "listening");

  (isPoolProcess() ? onPoolStop : onStopSignals)(logger, async (signal) => {
    logger.info({ signal, inFlight: server.inFlight() }, "stopping");
    const finished = await server.close(IN_FLIGHT_DEADLINE_MS);
    if (!finished) {
      logger.error(
        { deadlineMs: IN_FLIGHT_DEADLINE_MS },
        "requests still in flight at the deadline; their connections were closed",
      );
    }
    const drained = await Promise.race([
      handlers.close().then(
        () => true,
        (err: unknown) => {
          logger.error({ err }, "draining the NATS connection failed");
          return false;
        },
      ),
      new Promise<false>((resolve) => setTimeout(resolve, DRAIN_DEADLINE_MS, false).unref()),
    ]);
    logger.info({ finished, drained }, "stopped");
    return finished && drained ? 0 : 1;
  });
}

await startOrExit("ingest server", main);
