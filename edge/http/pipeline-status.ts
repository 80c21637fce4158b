import { RequestStrategy, type JetStreamManager, type NatsConnection } from "nats";
import { QUERY_SERVICE_NAME } from "../../shared/query-protocol.ts";

/** Where the pipeline's parts are: the consumer, the dead-letter stream, the workers' service. */
export interface PipelineNames {
  readonly streamName: string;
  readonly consumerName: string;
  readonly dlqName: string;
}

/**
 * The pipeline behind the stream, in counts: what the live page's health panel shows. Rates
 * (ingest, store writes) are the differences of these totals between two reads.
 */
export interface PipelineStatus {
  /** Messages ever accepted into the stream (its last sequence): the ingest total. */
  readonly acceptedMessages: number;
  /** Messages not yet delivered to a worker (backlog) and delivered but not yet acked. */
  readonly consumer: { readonly pending: number; readonly ackPending: number } | null;
  /** Messages waiting in the dead-letter stream. */
  readonly deadLetters: number | null;
  /** Workers answering the query service's ping, and the metrics they stored since they started. */
  readonly workers: { readonly answering: number; readonly metricsStored: number };
}

/** How long the workers' stats are waited for, and for more after the first answer. */
const WORKERS_WAIT_MS = 1000;
const WORKERS_JITTER_MS = 100;

export async function pipelineStatus(
  nc: NatsConnection,
  jsm: JetStreamManager,
  names: PipelineNames,
  acceptedMessages: number,
): Promise<PipelineStatus> {
  const [consumer, deadLetters, workers] = await Promise.all([
    jsm.consumers.info(names.streamName, names.consumerName).then(
      (info) => ({ pending: info.num_pending, ackPending: info.num_ack_pending }),
      () => null,
    ),
    jsm.streams.info(names.dlqName).then(
      (info) => info.state.messages,
      () => null,
    ),
    workersOf(nc, names.streamName),
  ]);
  return { acceptedMessages, consumer, deadLetters, workers };
}

/** The workers of this stream answering the services protocol's STATS, with their counters. */
async function workersOf(nc: NatsConnection, streamName: string) {
  let answering = 0;
  let metricsStored = 0;
  try {
    const client = nc.services.client({
      strategy: RequestStrategy.JitterTimer,
      maxWait: WORKERS_WAIT_MS,
      jitter: WORKERS_JITTER_MS,
    });
    for await (const stats of await client.stats(QUERY_SERVICE_NAME)) {
      if (stats.metadata?.["stream"] !== streamName) continue;
      answering++;
      const data = stats.endpoints?.[0]?.data as { metricsStored?: unknown } | undefined;
      if (typeof data?.metricsStored === "number") metricsStored += data.metricsStored;
    }
  } catch {
    // No worker at all is "no responders": none answering.
  }
  return { answering, metricsStored };
}
