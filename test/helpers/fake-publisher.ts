import type { OutgoingMessage, PublishReceipt, Publisher } from "../../edge/publish/publisher.ts";

/** A publisher for unit tests: records what it is given and answers as `publish` says. */
export function fakePublisher(
  publish: (message: OutgoingMessage) => Promise<PublishReceipt> = () =>
    Promise.resolve({ stream: "METRICS", seq: 1, duplicate: false }),
  maxMessageBytes = 1024 * 1024,
): Publisher & { readonly published: OutgoingMessage[] } {
  const published: OutgoingMessage[] = [];
  return {
    published,
    maxMessageBytes: () => Promise.resolve(maxMessageBytes),
    publish(message) {
      published.push(message);
      return publish(message);
    },
  };
}
