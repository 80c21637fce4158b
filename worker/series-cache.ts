/** A stored series as the worker knows it: its id and the attributes it was stored with. */
export interface KnownSeries {
  readonly id: number;
  readonly attributes: string | null;
}

/**
 * The ids of the series met lately, by series key, so that a sample of a known series costs no
 * lookup. Bounded: past `capacity` the series used least recently is forgotten (and looked up
 * again when it comes back). Only ids whose series row is committed may be added.
 */
export class SeriesCache {
  readonly #byKey = new Map<string, KnownSeries>();
  readonly #capacity: number;

  constructor(capacity = 100_000) {
    this.#capacity = capacity;
  }

  get(key: string): KnownSeries | undefined {
    const known = this.#byKey.get(key);
    if (known !== undefined) {
      // A Map iterates in insertion order: re-inserting makes it the most recently used.
      this.#byKey.delete(key);
      this.#byKey.set(key, known);
    }
    return known;
  }

  set(key: string, known: KnownSeries): void {
    this.#byKey.delete(key);
    this.#byKey.set(key, known);
    while (this.#byKey.size > this.#capacity) {
      const oldest = this.#byKey.keys().next();
      if (oldest.done === true) break;
      this.#byKey.delete(oldest.value);
    }
  }

  get size(): number {
    return this.#byKey.size;
  }
}
