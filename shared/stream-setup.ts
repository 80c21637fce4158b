import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  nanos,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
} from "nats";
import type { Config } from "./config.ts";
import { isNotFound } from "./nats-errors.ts";

/** The subject the JSON API publishes to. */
export function jsonSubject(stream: Config["stream"]): string {
  return `${stream.subjectPrefix}.json`;
}

/** The agent protocols, each publishing to a subject of its own. */
export type AgentProtocol = "influx" | "otlp" | "prometheus";

/** The subject an agent protocol's endpoint publishes to. */
export function agentSubject(stream: Config["stream"], protocol: AgentProtocol): string {
  return `${stream.subjectPrefix}.${protocol}`;
}

/** The subject a dead-lettered message is published to. */
export function deadLetterSubject(stream: Config["stream"], reason: string): string {
  return `${stream.subjectPrefix}_dlq.${reason}`;
}

/**
 * The metrics stream. A work queue: a message leaves the stream once the worker acked it, so the
 * stream holds only the unprocessed backlog, and `discard: new` makes a full backlog refuse new
 * data (the edge answers 503) instead of dropping metrics nobody has stored yet.
 */
export function metricsStreamConfig(stream: Config["stream"]): Partial<StreamConfig> {
  return {
    name: stream.name,
    subjects: [`${stream.subjectPrefix}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Workqueue,
    discard: DiscardPolicy.New,
    num_replicas: stream.replicas,
    max_age: nanos(stream.maxAgeSeconds * 1000),
    max_bytes: stream.maxBytes,
    duplicate_window: nanos(stream.duplicateWindowSeconds * 1000),
  };
}

/** What cannot ever be stored, kept until an operator replays or deletes it. */
export function deadLetterStreamConfig(stream: Config["stream"]): Partial<StreamConfig> {
  return {
    name: stream.dlqName,
    subjects: [`${stream.subjectPrefix}_dlq.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.New,
    num_replicas: stream.replicas,
    max_bytes: stream.maxBytes,
  };
}

/** The durable pull consumer that every worker process shares. */
export function consumerConfig(config: Config): Partial<ConsumerConfig> {
  return {
    durable_name: config.consumer.name,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(config.consumer.ackWaitSeconds * 1000),
    max_ack_pending: config.consumer.maxAckPending,
    max_deliver: config.consumer.maxDeliver,
    ...backoff(config.consumer),
    filter_subject: `${config.stream.subjectPrefix}.>`,
  };
}

/**
 * JetStream's backoff lists the ack wait of every delivery, the first included (it then takes
 * the place of ack_wait), and must be shorter than max_deliver: later entries would never be used.
 */
function backoff(consumer: Config["consumer"]): Partial<ConsumerConfig> {
  if (consumer.backoffSeconds.length === 0) return {};
  const waits = [consumer.ackWaitSeconds, ...consumer.backoffSeconds];
  return { backoff: waits.slice(0, consumer.maxDeliver - 1).map((s) => nanos(s * 1000)) };
}

/** One line of what `ensureStreams` found or did, for logs and `npm run setup`. */
export type Change = `${"created" | "updated" | "unchanged"} ${string}`;

/**
 * Creates or updates both streams and the consumer to match the configuration. Idempotent:
 * a second run reports every part unchanged and changes nothing.
 */
export async function ensureStreams(jsm: JetStreamManager, config: Config): Promise<Change[]> {
  return [
    await ensureStream(jsm, metricsStreamConfig(config.stream)),
    await ensureStream(jsm, deadLetterStreamConfig(config.stream)),
    await ensureConsumer(jsm, config.stream.name, consumerConfig(config)),
  ];
}

async function ensureStream(jsm: JetStreamManager, wanted: Partial<StreamConfig>): Promise<Change> {
  const name = wanted.name ?? "";
  const existing = await jsm.streams.info(name).catch((err: unknown) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
  if (!existing) {
    await jsm.streams.add(wanted);
    return `created stream ${name}`;
  }
  const diff = differences(existing.config, wanted);
  if (diff.length === 0) return `unchanged stream ${name}`;
  await jsm.streams.update(name, { ...existing.config, ...wanted });
  return `updated stream ${name}: ${diff.join(", ")}`;
}

async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  wanted: Partial<ConsumerConfig>,
): Promise<Change> {
  const name = wanted.durable_name ?? "";
  const existing = await jsm.consumers.info(stream, name).catch((err: unknown) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
  if (!existing) {
    await jsm.consumers.add(stream, wanted);
    return `created consumer ${stream}/${name}`;
  }
  const diff = differences(existing.config, wanted);
  if (diff.length === 0) return `unchanged consumer ${stream}/${name}`;
  await jsm.consumers.update(stream, name, wanted);
  return `updated consumer ${stream}/${name}: ${diff.join(", ")}`;
}

/** The wanted fields whose current value differs, as `field old → new`. */
function differences(current: object, wanted: object): string[] {
  const have = current as Record<string, unknown>;
  return Object.entries(wanted)
    .filter(([key, value]) => JSON.stringify(have[key]) !== JSON.stringify(value))
    .map(([key, value]) => `${key} ${JSON.stringify(have[key])} → ${JSON.stringify(value)}`);
}
