import { expect } from "vitest";
import type { AgentHandlerOptions } from "../../edge/publish/agent-publish.ts";
import { createAuthenticator, type AuthOptions } from "../../edge/http/auth.ts";
import { decodeEnvelope, type Envelope } from "../../shared/envelope.ts";
import type { Logger } from "../../shared/logger.ts";
import type { Metric } from "../../shared/metric-schema.ts";
import type { OutgoingMessage, PublishReceipt } from "../../edge/publish/publisher.ts";
import { fakePublisher } from "./fake-publisher.ts";
import { silentLogger } from "./logger.ts";

export interface AgentSetup {
  readonly publish?: (message: OutgoingMessage) => Promise<PublishReceipt>;
  readonly auth?: Partial<AuthOptions>;
  readonly now?: () => number;
  readonly logger?: Logger;
}

/**
 * An agent protocol's handler options over a fake publisher, local development's
 * authentication for an agent's endpoint (scope `influx` unless `auth` says otherwise), and what
 * the handler published.
 */
export function agentOptions(
  subject: string,
  now: number,
  setup: AgentSetup = {},
): { options: AgentHandlerOptions; published: OutgoingMessage[] } {
  const publisher = fakePublisher(setup.publish);
  return {
    options: {
      publisher,
      authenticate: createAuthenticator({
        apiKeys: [],
        authMode: undefined,
        isLocal: true,
        scope: "influx",
        ...setup.auth,
      }),
      subject,
      logger: setup.logger ?? silentLogger,
      now: setup.now ?? (() => now),
    },
    published: publisher.published,
  };
}

/** A published message's envelope, checked as the worker would read it: series-keyed, on `subject`. */
export function seriesEnvelopeOf(message: OutgoingMessage, subject: string): Envelope {
  const decoded = decodeEnvelope(message.data);
  if (!decoded.ok) throw new Error(`the published envelope does not decode: ${decoded.message}`);
  expect(decoded.envelope.key).toBe("series");
  expect(message.subject).toBe(subject);
  expect(message.msgId).toBe(decoded.envelope.id);
  return decoded.envelope;
}

/** Every metric published, in order. */
export function publishedMetrics(published: readonly OutgoingMessage[], subject: string): Metric[] {
  return published.flatMap((message) => seriesEnvelopeOf(message, subject).metrics);
}
