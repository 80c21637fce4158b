/**
 * Values made once per key and kept across requests or batches, until `limit` keys are held:
 * then all are dropped and made again as they come back. Cheaper than a least-recently-used
 * cache on a hot path (no bookkeeping per hit), for keys that come back request after request
 * — an agent's series — and bounded all the same.
 */
export class BoundedMemo<V> {
  readonly #values = new Map<string, V>();
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** The value of `key`, made by `make` when it is not held. */
  get(key: string, make: () => V): V {
    let value = this.#values.get(key);
    if (value === undefined) {
      value = make();
      if (this.#values.size >= this.#limit) this.#values.clear();
      this.#values.set(key, value);
    }
    return value;
  }
}
