/**
 * UTF-8 bytes written from many pieces of text without ever making one string of them all.
 *
 * V8 keeps a string over 128 KB in its large-object space, and making one costs ~40× what the
 * same bytes cost as smaller strings: here, on Node 24, 0.65 ms for a 129 KB string against
 * 16 µs for a 127 KB one, and 2.5 ms to join 2,000 metrics' JSON into a 270 KB message and turn
 * it into bytes against 0.15 ms in pieces (bench/notes.md). A message of a large batch is just
 * such a string: its pieces are gathered here a few KB at a time, and each few KB made bytes.
 */

/**
 * Characters gathered before they become bytes. What is gathered is then at most twice this and
 * one text more: 64 KB as two-byte characters, below the large-object size but for a text that
 * was as large already.
 */
const CHUNK_CHARS = 16 * 1024;

export class TextBytes {
  readonly #chunks: Buffer[] = [];
  #pending: string[] = [];
  #pendingChars = 0;

  /** Adds `text`. */
  push(text: string): this {
    this.#pending.push(text);
    this.#pendingChars += text.length;
    if (this.#pendingChars >= CHUNK_CHARS) this.#flush();
    return this;
  }

  /**
   * Adds `texts` with `separator` between each two, as `texts.join(separator)` would: joined a
   * chunk at a time (a column of a message holds thousands of short texts).
   */
  pushJoined(texts: readonly string[], separator: string): this {
    let from = 0;
    let chars = 0;
    for (let i = 0; i < texts.length; i++) {
      chars += (texts[i] as string).length + separator.length;
      if (chars < CHUNK_CHARS && i < texts.length - 1) continue;
      if (from > 0) this.push(separator);
      this.push(texts.slice(from, i + 1).join(separator));
      from = i + 1;
      chars = 0;
    }
    return this;
  }

  /** Everything added, as UTF-8. */
  bytes(): Buffer {
    this.#flush();
    return this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
  }

  #flush(): void {
    if (this.#pending.length === 0) return;
    this.#chunks.push(Buffer.from(this.#pending.join(""), "utf8"));
    this.#pending = [];
    this.#pendingChars = 0;
  }
}
