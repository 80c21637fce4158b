import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** The worker's own telemetry, served on `/metrics` in Prometheus text format. */
export interface WorkerMetrics {
  readonly registry: Registry;
  /** Rows committed (metrics stored for the first time). */
  readonly metricsStored: Counter;
  /** Metrics found stored already (a redelivered message): idempotent no-ops. */
  readonly metricsDuplicate: Counter;
  /** Metrics measured before the retention window when they arrived: not stored. */
  readonly metricsExpired: Counter;
  /** Samples deleted by retention. */
  readonly samplesDeleted: Counter;
  /** Messages whose metrics are committed and that were acked. */
  readonly messagesStored: Counter;
  /** Messages handed back for a later delivery because the database failed. */
  readonly messagesFailed: Counter;
  readonly messagesDeadLettered: Counter<"reason">;
  /** Messages that arrived on their second delivery or later. */
  readonly messagesRedelivered: Counter;
  readonly batchSize: Histogram;
  readonly storeSeconds: Histogram;
  /** Connection and consumer events: disconnects, reconnects, missed heartbeats, … */
  readonly events: Counter<"event">;
  readonly consumerPending: Gauge;
  readonly consumerAckPending: Gauge;
  /** Remote write only: samples the receiver answered 2xx for. */
  readonly remoteWriteSamplesSent: Counter;
  /** Remote write only: requests sent again after a 5xx, a 429 or no answer. */
  readonly remoteWriteRetries: Counter;
  /** Remote write only: from the first attempt of a request to its 2xx. */
  readonly remoteWriteSendSeconds: Histogram;
  /** Remote write only: fields of JSON metrics a sample has no place for. */
  readonly remoteWriteDroppedFields: Counter;
}

/**
 * Creates the worker's metrics in a registry of its own. `consumerState` is asked at each scrape
 * for the consumer's backlog; when it fails the gauges keep their last values.
 */
export function createWorkerMetrics(
  consumerState: () => Promise<{ pending: number; ackPending: number }>,
): WorkerMetrics {
  const registry = new Registry();
  // The process's own: resident memory, heap, event loop lag, GC pauses, open files.
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  let last = { pending: 0, ackPending: 0 };
  // Both gauges are collected at once during a scrape; they share one look-up.
  let inflight: Promise<void> | undefined;
  const refresh = () =>
    (inflight ??= consumerState()
      .then((state) => {
        last = state;
      })
      .catch(() => undefined)
      .finally(() => {
        inflight = undefined;
      }));
  return {
    registry,
    metricsStored: new Counter({
      name: "worker_metrics_stored_total",
      help: "Metrics stored (rows added to the database).",
      registers,
    }),
    metricsDuplicate: new Counter({
      name: "worker_metrics_duplicate_total",
      help: "Metrics of redelivered messages that were stored already, and so added no row.",
      registers,
    }),
    metricsExpired: new Counter({
      name: "worker_metrics_expired_total",
      help: "Metrics older than RETENTION when they arrived, and so not stored.",
      registers,
    }),
    samplesDeleted: new Counter({
      name: "worker_samples_deleted_total",
      help: "Samples deleted by retention (PostgreSQL: as estimated for the partitions dropped).",
      registers,
    }),
    messagesStored: new Counter({
      name: "worker_messages_stored_total",
      help: "Messages whose metrics were committed and that were acked.",
      registers,
    }),
    messagesFailed: new Counter({
      name: "worker_messages_failed_total",
      help: "Messages handed back for redelivery because the database failed.",
      registers,
    }),
    messagesDeadLettered: new Counter({
      name: "worker_messages_dead_lettered_total",
      help: "Messages copied to the dead-letter stream, by reason.",
      labelNames: ["reason"] as const,
      registers,
    }),
    messagesRedelivered: new Counter({
      name: "worker_messages_redelivered_total",
      help: "Messages received on their second delivery or later.",
      registers,
    }),
    batchSize: new Histogram({
      name: "worker_batch_messages",
      help: "Messages per database transaction.",
      buckets: [1, 5, 10, 50, 100, 250, 500, 1000, 5000],
      registers,
    }),
    storeSeconds: new Histogram({
      name: "worker_store_duration_seconds",
      help: "Time to store one batch, from the start of its transaction to the commit.",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    events: new Counter({
      name: "worker_events_total",
      help: "NATS connection and consumer events (disconnect, reconnect, heartbeats_missed, …).",
      labelNames: ["event"] as const,
      registers,
    }),
    remoteWriteSamplesSent: new Counter({
      name: "worker_remote_write_samples_sent_total",
      help: "Samples a remote-write receiver answered 2xx for.",
      registers,
    }),
    remoteWriteRetries: new Counter({
      name: "worker_remote_write_retries_total",
      help: "Remote-write requests sent again after a 5xx, a 429 or no answer.",
      registers,
    }),
    remoteWriteSendSeconds: new Histogram({
      name: "worker_remote_write_send_duration_seconds",
      help: "Time from a remote-write request's first attempt to its 2xx, retries included.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    remoteWriteDroppedFields: new Counter({
      name: "worker_remote_write_dropped_fields_total",
      help: "Fields of JSON metrics beyond name, value, timestamp and tags, not sent by remote write.",
      registers,
    }),
    consumerPending: new Gauge({
      name: "worker_consumer_pending_messages",
      help: "Messages in the stream not yet delivered to any worker (the lag).",
      registers,
      async collect() {
        await refresh();
        this.set(last.pending);
      },
    }),
    consumerAckPending: new Gauge({
      name: "worker_consumer_ack_pending_messages",
      help: "Messages delivered to the workers and not yet acknowledged.",
      registers,
      async collect() {
        await refresh();
        this.set(last.ackPending);
      },
    }),
  };
}
