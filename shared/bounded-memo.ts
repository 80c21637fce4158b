/**
 * Values made once per key and kept across requests or batches, until `limit` keys are held or
 * their text adds up to `maxKeyChars` (512 characters a key on average, by default): then all
 * are dropped and made again as they come back.
 * Cheaper than a least-recently-used cache on a hot path (no bookkeeping per hit), for keys
 * that come back request after request — an agent's series — and bounded all the same. The
 * keys here are the text of what the values are made of (a series' labels, its name and tags),
 * so bounding the keys' characters bounds the values too: 20,000 series of the largest a
 * metric may be (64 KiB) would otherwise hold gigabytes. The bound is on the total, not on each
 * key: a batch of many short keys (a Telegraf batch keys ~10,000 series by ~250 characters) must
 * not empty it every time.
 */
export class BoundedMemo<V> {
  readonly #values = new Map<string, V>();
  readonly #limit: number;
  readonly #maxKeyChars: number;
  #keyChars = 0;

  constructor(limit: number, maxKeyChars = limit * MEMO_KEY_CHARS) {
    this.#limit = limit;
    this.#maxKeyChars = maxKeyChars;
  }

  /** The value of `key`, made by `make` when it is not held. */
  get(key: string, make: () => V): V {
    let value = this.#values.get(key);
    if (value === undefined) {
      value = make();
      if (this.#values.size >= this.#limit || this.#keyChars + key.length > this.#maxKeyChars) {
        this.#values.clear();
        this.#keyChars = 0;
      }
      this.#values.set(key, value);
      this.#keyChars += key.length;
    }
    return value;
  }

  /** Keys held. */
  get size(): number {
    return this.#values.size;
  }
}

/**
 * `make` of an object, made once per object and kept as long as the object lives (a `WeakMap`):
 * for what is worked out of objects that are themselves kept, such as the lists a protobuf
 * reader gives back for the same bytes.
 */
export function objectMemo<K extends object, V>(make: (key: K) => V): (key: K) => V {
  const made = new WeakMap<K, V>();
  return (key) => {
    let value = made.get(key);
    if (value === undefined) {
      value = make(key);
      made.set(key, value);
    }
    return value;
  };
}

/**
 * The longest key a converter keeps a series by. A longer one names a rare, large series (dozens
 * of long tags): building and hashing its key for each of its fields or samples would cost more
 * than making the series again, and keeping it would hold as much again. Such a series is made
 * per request.
 */
export const MEMO_KEY_CHARS = 512;
