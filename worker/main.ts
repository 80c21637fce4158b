/**
 * The worker process: stores every metric of the stream in the database, exactly once.
 * This file wires the parts together and owns the process's lifecycle.
 */
import { connect } from "nats";
import { ConfigError, loadConfig, type Config } from "../shared/config.ts";
import { createLogger } from "../shared/logger.ts";
import { natsOptions } from "../shared/nats-connection.ts";
import { ensureStreams } from "../shared/stream-setup.ts";
import { createBatchProcessor } from "./batch-processor.ts";
import { startConsumeLoop } from "./consume-loop.ts";
import { createDeadLetterSender } from "./dead-letters.ts";
import { openStore } from "./metric-store.ts";

/** How long a graceful stop may take before the process exits anyway. */
const SHUTDOWN_DEADLINE_MS = 20_000;

function readConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`worker: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  const logger = createLogger("worker", config.logLevel);

  const store = await openStore(config.database);
  logger.info({ database: config.database.url.split(":")[0] }, "database ready");

  const nc = await connect(natsOptions(config.nats, "metrics-worker")).catch((err: unknown) => {
    logger.fatal(
      { err, servers: config.nats.servers },
      "cannot connect to NATS; check NATS_URL and the NATS credentials",
    );
    process.exit(1);
  });
  for (const change of await ensureStreams(await nc.jetstreamManager(), config)) {
    logger.info(change);
  }

  const js = nc.jetstream();
  const processBatch = createBatchProcessor({
    store,
    deadLetter: createDeadLetterSender(js, config.stream),
    maxDeliver: config.consumer.maxDeliver,
    logger,
  });
  const loop = await startConsumeLoop({
    js,
    stream: config.stream.name,
    consumer: config.consumer.name,
    batchSize: config.worker.batchSize,
    processBatch,
    onBatch: (outcome, messages) => {
      logger.debug({ messages, ...outcome, storeError: undefined }, "batch");
    },
    logger,
  });
  logger.info({ stream: config.stream.name, consumer: config.consumer.name }, "worker started");

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, "second signal; exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "stopping");
    setTimeout(() => {
      logger.error("graceful stop took too long; exiting");
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    void (async () => {
      await loop.stop();
      await nc.drain();
      await store.close();
      logger.info("stopped");
      process.exit(0);
    })();
  };
  process.on("SIGINT", () => {
    shutdown("SIGINT");
  });
  process.on("SIGTERM", () => {
    shutdown("SIGTERM");
  });
}

await main();
