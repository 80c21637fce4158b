/**
 * The worker process: stores every metric of the stream in the database, exactly once.
 * This file wires the parts together and owns the process's lifecycle.
 */
import { connect, Events, type NatsConnection } from "nats";
import { loadConfigOrExit, type Config } from "../shared/config.ts";
import { createLogger, type Logger } from "../shared/logger.ts";
import { onStopSignals } from "../shared/stop-signals.ts";
import { listenStartupError, startOrExit, StartupError } from "../shared/startup-error.ts";
import {
  describeConnectError,
  jetStreamManagerOf,
  maxPayloadOf,
  natsOptions,
} from "../shared/nats-connection.ts";
import { ensureStreams } from "../shared/stream-setup.ts";
import { createBatchProcessor } from "./batch-processor.ts";
import { startConsumeLoop } from "./consume-loop.ts";
import { createDeadLetterPublisher, createDeadLetterSender } from "./dead-letters.ts";
import { watchExhaustedMessages } from "./exhausted-messages.ts";
import { openQueryStore } from "./open-query-store.ts";
import { openStore } from "./open-store.ts";
import { startQueryService } from "./query-service.ts";
import { startRetention } from "./retention.ts";
import { startWorkerHttp } from "./worker-http.ts";
import { createWorkerMetrics, type WorkerMetrics } from "./worker-metrics.ts";

/** How long a graceful stop may take before the process exits anyway. */
const SHUTDOWN_DEADLINE_MS = 20_000;

async function connectNats(config: Config): Promise<NatsConnection> {
  const options = natsOptions(config.nats, "metrics-worker");
  try {
    return await connect(options);
  } catch (err) {
    // Refused credentials and untrusted certificates are named as such; the message names the
    // variables to check, never their values.
    const failure = describeConnectError(err, options);
    const hint = failure.kind === "unreachable" ? "; is it running? check NATS_URL" : "";
    throw new StartupError(`${failure.message}${hint}`);
  }
}

/** Logs and counts the connection's events; readiness asks the connection itself. */
async function watchConnection(nc: NatsConnection, metrics: WorkerMetrics, logger: Logger) {
  for await (const status of nc.status()) {
    if (status.type === Events.Disconnect || status.type === Events.Reconnect) {
      metrics.events.inc({ event: status.type });
      logger.warn({ event: status.type, server: status.data }, "NATS connection event");
    } else if (status.type === Events.Error || status.type === Events.LDM) {
      metrics.events.inc({ event: status.type });
      logger.error({ event: status.type }, "NATS connection event");
    }
  }
}

async function main(): Promise<void> {
  const config = loadConfigOrExit("worker");
  const logger = createLogger("worker", config.logLevel);

  // Asked only at a scrape, once the worker listens: by then `jsm` is set.
  const metrics = createWorkerMetrics(async () => {
    const info = await jsm.consumers.info(config.stream.name, config.consumer.name);
    return { pending: info.num_pending, ackPending: info.num_ack_pending };
  });
  const store = await openStore(config.database, {
    onPoolError: (err) => {
      logger.warn({ err }, "PostgreSQL connection lost; it is replaced when next needed");
    },
    sendTelemetry: {
      sent: (samples, seconds) => {
        metrics.remoteWriteSamplesSent.inc(samples);
        metrics.remoteWriteSendSeconds.observe(seconds);
      },
      retried: () => {
        metrics.remoteWriteRetries.inc();
      },
      droppedFields: (count) => {
        metrics.remoteWriteDroppedFields.inc(count);
      },
    },
  });
  logger.info({ database: config.database.url.split(":")[0] }, "database ready");
  if (store.migrated !== undefined) {
    logger.info(
      store.migrated,
      "moved the rows of schema version 1 into series and samples (collapsed: rows of an identity stored before)",
    );
  }

  const nc = await connectNats(config);
  const jsm = await jetStreamManagerOf(nc, config.nats.servers.join(","));
  const ensure = async () => {
    for (const change of await ensureStreams(jsm, config)) logger.info(change);
  };
  await ensure();
  void watchConnection(nc, metrics, logger);

  // Reads are answered from this worker's store, over NATS: the edge holds no database access.
  const queries = await openQueryStore(config.database);
  const queryService =
    queries &&
    (await startQueryService({
      nc,
      store: queries,
      streamName: config.stream.name,
      database: config.database.url.split(":")[0] ?? "",
      counters: async () => ({
        metricsStored: (await metrics.metricsStored.get()).values[0]?.value ?? 0,
      }),
      logger,
    }));

  const js = nc.jetstream();
  const processBatch = createBatchProcessor({
    store,
    deadLetter: createDeadLetterSender(js, config.stream),
    maxDeliver: config.consumer.maxDeliver,
    logger,
    retentionMs: config.database.retentionMs,
  });
  const advisories = watchExhaustedMessages({
    nc,
    jsm,
    stream: config.stream.name,
    consumer: config.consumer.name,
    deadLetter: createDeadLetterPublisher(js, config.stream),
    onDeadLettered: () => {
      metrics.messagesDeadLettered.inc({ reason: "max_deliver" });
    },
    logger,
  });
  const loop = await startConsumeLoop({
    js,
    stream: config.stream.name,
    consumer: config.consumer.name,
    batchSize: config.worker.batchSize,
    concurrency: config.worker.concurrency,
    maxPayload: () => maxPayloadOf(nc),
    ackWaitMs: config.consumer.ackWaitSeconds * 1000,
    processBatch,
    pingStore: () => store.ping(),
    recreateConsumer: ensure,
    onBatch: (outcome, messages) => {
      metrics.batchSize.observe(messages.length);
      if (outcome.storeSeconds !== undefined) metrics.storeSeconds.observe(outcome.storeSeconds);
      metrics.metricsStored.inc(outcome.rowsAdded);
      metrics.metricsDuplicate.inc(outcome.rows - outcome.rowsAdded);
      metrics.metricsExpired.inc(outcome.expired);
      metrics.messagesStored.inc(outcome.stored);
      metrics.messagesFailed.inc(outcome.retried);
      for (const reason of outcome.deadLettered) metrics.messagesDeadLettered.inc({ reason });
      metrics.messagesRedelivered.inc(messages.filter((m) => m.info.deliveryCount > 1).length);
    },
    onEvent: (event) => {
      metrics.events.inc({ event });
    },
    logger,
  });

  const port = config.worker.httpPort;
  const http = await startWorkerHttp({
    host: config.worker.httpHost,
    port,
    registry: metrics.registry,
    checks: [
      {
        name: "nats",
        // A round trip to the server: while reconnecting it does not come back in time.
        check: () => (nc.isClosed() ? Promise.reject(new Error("connection closed")) : nc.flush()),
      },
      {
        name: "consumer",
        check: async () => {
          await jsm.consumers.info(config.stream.name, config.consumer.name);
        },
      },
      {
        // A remote-write receiver answering an empty request, or the database a trivial query.
        name: config.database.url.startsWith("remote-write+") ? "receiver" : "database",
        check: () => store.ping(),
      },
    ],
    logger,
  }).catch((err: unknown) => {
    throw listenStartupError(err, { port, portVariable: "WORKER_HTTP_PORT" }) ?? err;
  });
  const retentionMs = config.database.retentionMs;
  const retention =
    retentionMs === undefined
      ? undefined
      : startRetention({
          store,
          retentionMs,
          logger,
          onDeleted: (samples) => {
            metrics.samplesDeleted.inc(samples);
          },
        });
  logger.info({ stream: config.stream.name, consumer: config.consumer.name }, "worker started");

  onStopSignals(logger, async (signal) => {
    logger.info({ signal }, "stopping");
    setTimeout(() => {
      logger.error("graceful stop took too long; exiting");
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    await loop.stop();
    advisories.unsubscribe();
    await queryService?.stop();
    await nc.drain();
    await http.close();
    await retention?.stop();
    await queries?.close();
    await store.close();
    logger.info("stopped");
    return 0;
  });
}

await startOrExit("worker", main);
