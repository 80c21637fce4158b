import type { JetStreamManager, NatsConnection, Subscription } from "nats";
import type { Logger } from "../shared/logger.ts";
import type { DeadLetterReason, Letter } from "./dead-letters.ts";

export interface ExhaustedWatchOptions {
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly stream: string;
  readonly consumer: string;
  readonly deadLetter: (letter: Letter, reason: DeadLetterReason, detail: string) => Promise<void>;
  readonly onDeadLettered?: () => void;
  readonly logger: Logger;
}

interface MaxDeliveriesAdvisory {
  readonly stream_seq: number;
  readonly deliveries: number;
}

/**
 * The last resort for `max_deliver`. A worker that sees a message's last delivery fail
 * dead-letters it itself; but when no worker saw that (one crashed while holding it, or its ack
 * wait ran out), JetStream stops delivering the message and says so in an advisory. This
 * dead-letters such a message from the advisory and removes it from the work queue, so that it
 * is never dropped in silence. Workers share the advisories through a queue group: one handles
 * each, and doing it twice would keep one copy anyway.
 */
export function watchExhaustedMessages(options: ExhaustedWatchOptions): Subscription {
  const { jsm, stream, logger } = options;
  const subject = `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${options.consumer}`;

  async function handle(advisory: MaxDeliveriesAdvisory): Promise<void> {
    const stored = await jsm.streams.getMessage(stream, { seq: advisory.stream_seq }).catch(
      () => undefined, // already removed: handled by another worker, or acked at the last moment
    );
    if (!stored) return;
    await options.deadLetter(
      {
        data: stored.data,
        headers: stored.header,
        subject: stored.subject,
        stream,
        streamSeq: stored.seq,
        deliveries: advisory.deliveries,
      },
      "max_deliver",
      `delivered ${advisory.deliveries} times without an ack`,
    );
    await jsm.streams.deleteMessage(stream, stored.seq, false);
    options.onDeadLettered?.();
    logger.warn(
      { seq: stored.seq, deliveries: advisory.deliveries },
      "exhausted message dead-lettered",
    );
  }

  return options.nc.subscribe(subject, {
    queue: "metrics-worker-advisories",
    callback: (err, msg) => {
      if (err) {
        logger.error({ err }, "advisory subscription failed");
        return;
      }
      const advisory = msg.json<MaxDeliveriesAdvisory>();
      handle(advisory).catch((e: unknown) => {
        logger.error(
          { err: e, seq: advisory.stream_seq },
          "dead-lettering an exhausted message failed",
        );
      });
    },
  });
}
