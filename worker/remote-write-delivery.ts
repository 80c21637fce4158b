/**
 * Delivering one remote-write request: what an answer means, and retrying the ones worth
 * retrying. Remote write 1.0 says: 2xx stored; 5xx and 429 try again later; any other 4xx, the
 * request can never be stored as it is.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { ReceiverAnswer } from "./receiver-client.ts";
import { backoffMs } from "./retry-backoff.ts";

/** How a request ended once retrying stopped. */
export type Delivery =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** What the refusal says, by the receivers' documented texts. */
      readonly kind: RefusalKind;
      /** The receiver's status and answer, as the reason a message is dead-lettered. */
      readonly answer: string;
    };

/**
 * - `out_of_order`: older than the series' newest sample (Prometheus: "out of order sample",
 *   also "out of bounds" for a sample older than its head block);
 * - `duplicate`: another value at a timestamp the series has already (Prometheus: "duplicate
 *   sample for timestamp"). The first value stays, as the other stores keep the first;
 * - `refused`: anything else.
 */
export type RefusalKind = "out_of_order" | "duplicate" | "refused";

export interface RetryPolicy {
  /** Attempts in all, the first one included. */
  readonly attempts: number;
  /** Longest wait before an attempt, even when `Retry-After` asks for more. */
  readonly maxDelayMs: number;
  /** Told before each retry, with why the previous attempt failed. */
  readonly onRetry?: (reason: string) => void;
  readonly sleep?: (ms: number) => Promise<unknown>;
}

/** The receiver answered "not now" (5xx, 429) or not at all, on every attempt. */
export class ReceiverUnavailable extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ReceiverUnavailable";
  }
}

/** Texts of refusals, as Prometheus (`storage.Err…`) and Mimir (`err-mimir-…`) word them. */
const REFUSAL_TEXTS: readonly (readonly [string, RefusalKind])[] = [
  ["duplicate sample for timestamp", "duplicate"],
  ["err-mimir-sample-duplicate-timestamp", "duplicate"],
  ["out of order sample", "out_of_order"],
  ["out of bounds", "out_of_order"],
  ["err-mimir-sample-out-of-order", "out_of_order"],
  ["err-mimir-sample-timestamp-too-old", "out_of_order"],
];

export function refusalKindOf(text: string): RefusalKind {
  const lower = text.toLowerCase();
  return REFUSAL_TEXTS.find(([said]) => lower.includes(said))?.[1] ?? "refused";
}

/**
 * Posts `body` until the receiver answers 2xx or refuses it for good, waiting between attempts
 * as `Retry-After` asks, else `backoffMs`. Throws `ReceiverUnavailable` when the attempts ran out.
 */
export async function deliver(
  post: (body: Uint8Array) => Promise<ReceiverAnswer>,
  body: Uint8Array,
  policy: RetryPolicy,
): Promise<Delivery> {
  const wait = policy.sleep ?? sleep;
  for (let attempt = 1; ; attempt++) {
    let retryAfter: number | undefined;
    let reason: string;
    try {
      const answer = await post(body);
      if (answer.status >= 200 && answer.status < 300) return { ok: true };
      const said = `${answer.status} ${answer.text}`.trim();
      if (answer.status !== 429 && answer.status < 500) {
        return { ok: false, kind: refusalKindOf(answer.text), answer: said };
      }
      reason = `the receiver answered ${said}`;
      retryAfter = answer.retryAfterMs;
    } catch (err) {
      reason = `no answer from the receiver: ${err instanceof Error ? err.message : String(err)}`;
      if (attempt >= policy.attempts) throw new ReceiverUnavailable(reason, { cause: err });
    }
    if (attempt >= policy.attempts) throw new ReceiverUnavailable(reason);
    policy.onRetry?.(reason);
    await wait(Math.min(policy.maxDelayMs, retryAfter ?? backoffMs(attempt)));
  }
}
