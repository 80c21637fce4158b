import type { Consumer, ConsumerMessages, ConsumerStatus, FetchOptions, JsMsg } from "nats";

/**
 * Fakes of the few nats.js objects the consume loop touches, for unit tests only: a message
 * that records how it was settled, a pull that the test feeds, and a consumer that hands out
 * such pulls.
 */

/** A delivered message whose settlements (`ack`, `nak <delay>`, `working`…) are recorded. */
export interface FakeMessage {
  readonly msg: JsMsg;
  readonly seq: number;
  /** Every call, in order: "ack", "nak", "nak 4000", "working", "term". */
  readonly calls: string[];
}

let nextSeq = 1;

export function fakeMessage(bytes = 100, deliveryCount = 1): FakeMessage {
  const seq = nextSeq++;
  const calls: string[] = [];
  const msg = {
    data: new Uint8Array(bytes),
    info: { deliveryCount, streamSequence: seq },
    ack: () => calls.push("ack"),
    nak: (delay?: number) => calls.push(delay === undefined ? "nak" : `nak ${delay}`),
    working: () => calls.push("working"),
    term: () => calls.push("term"),
  } as unknown as JsMsg;
  return { msg, seq, calls };
}

/** An async iterable the test pushes values into, then ends or fails. */
class Channel<T> implements AsyncIterable<T> {
  readonly #queue: T[] = [];
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  push(value: T): void {
    this.#queue.push(value);
    this.#notify();
  }

  end(): void {
    this.#ended = true;
    this.#notify();
  }

  fail(err: Error): void {
    this.#error = err;
    this.end();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const value = this.#queue.shift();
      if (value !== undefined) {
        yield value;
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
}

/** One pull, as `consumer.fetch()` resolves to it: messages and status events the test sends. */
export class FakePull {
  readonly #messages = new Channel<JsMsg>();
  readonly #statuses = new Channel<ConsumerStatus>();
  readonly options: FetchOptions | undefined;
  stopped = false;

  constructor(options: FetchOptions | undefined) {
    this.options = options;
  }

  deliver(msg: JsMsg): void {
    this.#messages.push(msg);
  }

  status(status: ConsumerStatus): void {
    this.#statuses.push(status);
  }

  /** The pull ends as the server ends it: its messages or bytes delivered, or it expired. */
  end(): void {
    this.#messages.end();
    this.#statuses.end();
  }

  /** The pull fails, as when the connection or the consumer goes away. */
  fail(err: Error): void {
    this.#messages.fail(err);
    this.#statuses.end();
  }

  asConsumerMessages(): ConsumerMessages {
    return {
      [Symbol.asyncIterator]: () => this.#messages[Symbol.asyncIterator](),
      status: () => Promise.resolve(this.#statuses),
      stop: () => {
        this.stopped = true;
        this.end();
      },
    } as unknown as ConsumerMessages;
  }
}

/** A consumer whose pulls the test sees and feeds; `fetch` and `info` answer as told. */
export interface FakeConsumer {
  readonly consumer: Consumer;
  readonly pulls: FakePull[];
  /** Makes the next `fetch` fail with `err`. */
  failNextFetch(err: Error): void;
  /** What `info()` does; by default it resolves (the consumer exists). */
  info: () => Promise<unknown>;
}

export function fakeConsumer(): FakeConsumer {
  const pulls: FakePull[] = [];
  let fetchError: Error | undefined;
  const fake: FakeConsumer = {
    pulls,
    failNextFetch(err) {
      fetchError = err;
    },
    info: () => Promise.resolve({}),
    consumer: {
      fetch(options?: FetchOptions) {
        if (fetchError !== undefined) {
          const err = fetchError;
          fetchError = undefined;
          return Promise.reject(err);
        }
        const pull = new FakePull(options);
        pulls.push(pull);
        return Promise.resolve(pull.asConsumerMessages());
      },
      info: () => fake.info(),
    } as unknown as Consumer,
  };
  return fake;
}

/** An error as nats.js rejects with when the server answers a JetStream API error. */
export function apiError(errCode: number): Error {
  return Object.assign(new Error(`api error ${errCode}`), {
    api_error: { code: 404, err_code: errCode, description: "not found" },
  });
}
