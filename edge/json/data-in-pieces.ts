/**
 * A JSON API body `{"data": [Metric, ...]}` parsed from its text in pieces (`textPieces`), a
 * few thousand elements at a time, so that no string over 128 KiB is ever made of it (V8's
 * large-object space costs ~3.5 µs per KiB here: bench/notes.md). It takes only what it can
 * prove is that shape, and the same value `JSON.parse` would give of the whole text; for
 * anything else, malformed bodies included, it gives up and the caller parses the text whole,
 * answering as for any body (test/unit/data-in-pieces.test.ts compares the two on random and
 * mangled bodies).
 */

/** What comes before the first element; JSON's whitespace is these four characters alone. */
const OPENING = /^[ \t\n\r]*\{[ \t\n\r]*"data"[ \t\n\r]*:[ \t\n\r]*\[/;
/**
 * Characters the opening and the closing are looked for in: more whitespace than this around
 * the data array, and the body is parsed whole.
 */
const EDGE_CHARS = 256;
/** What ends the body, from the data array's closing bracket. */
const CLOSING = /^\][ \t\n\r]*\}[ \t\n\r]*$/;
/**
 * Where elements may be cut: the comma between two objects (metrics). A metric's own tags end
 * in `},` too, but a key follows them, not a `{`.
 */
const CUT = /\}[ \t\n\r]*,[ \t\n\r]*\{/g;

/** Characters of elements parsed at once: well below the 128 KiB a string may take. */
export const SEGMENT_CHARS = 32 * 1024;

/** A body's data array, and its elements' text as sent. */
export interface DataInPieces {
  readonly data: unknown[];
  /**
   * Runs of whole elements, each as it stands in the body: joined by commas, the elements of
   * `data` as JSON (what the JSON API publishes, not written again).
   */
  readonly runs: string[];
}

/**
 * `{ data }` as `JSON.parse` of the pieces joined would give it, with the elements' text
 * (`runs`), or undefined when the text is not that shape, not valid JSON, or not cut where it
 * can be. The elements are cut into runs of
 * about `segmentChars` at a comma between a `}` and a `{`, without reading the text between: each run is
 * parsed as `[run]` by `JSON.parse` itself, which takes it only when the run is whole elements
 * (a cut inside a string or a nested value leaves one open). Each run then starts where the
 * last ended, between two elements of the data array, so the runs are the array's elements;
 * the last ends at the closing bracket, which only the object's end may follow. A run that
 * does not parse gives up on the whole: a body whose strings or nested values hold `},{` pays at
 * most one run parsed twice.
 */
export function dataInPieces(
  pieces: readonly string[],
  segmentChars = SEGMENT_CHARS,
): DataInPieces | undefined {
  // The opening and the closing, each in the first or last pieces joined: pieces are 60 KiB,
  // but may be cut anywhere.
  let head = "";
  let first = 0;
  while (first < pieces.length && head.length < EDGE_CHARS) head += pieces[first++] as string;
  const opening = OPENING.exec(head);
  if (opening === null) return undefined;
  /** The text after the opening, in pieces: what the head holds past it, then the rest. */
  const rest = [head.slice(opening[0].length), ...pieces.slice(first)];
  let tail = "";
  let end = rest.length;
  while (end > 0 && tail.length < EDGE_CHARS) tail = (rest[--end] as string) + tail;
  const closing = tail.lastIndexOf("]");
  if (closing === -1 || !CLOSING.test(tail.slice(closing))) return undefined;
  /** The elements' text, in pieces, up to the closing bracket. */
  const between = rest.slice(0, end);
  between.push(tail.slice(0, closing));

  const data: unknown[] = [];
  const runs: string[] = [];
  /** The text of the run not parsed yet, across pieces. */
  let segment: string[] = [];
  let segmentLength = 0;
  for (const piece of between) {
    let from = 0;
    for (;;) {
      const wanted = Math.max(0, segmentChars - segmentLength);
      if (piece.length - from <= wanted) break;
      CUT.lastIndex = from + wanted;
      const cut = CUT.exec(piece);
      if (cut === null) break;
      const comma = piece.indexOf(",", cut.index);
      segment.push(piece.slice(from, comma));
      if (!parseInto(data, runs, segment)) return undefined;
      segment = [];
      segmentLength = 0;
      from = comma + 1;
    }
    segment.push(piece.slice(from));
    segmentLength += piece.length - from;
  }
  return parseInto(data, runs, segment) ? { data, runs } : undefined;
}

/**
 * Appends the elements of a run to `data` and its text to `runs`; false when the run is not
 * JSON. (A run is never empty but in an empty array: each cut has a `}` before it and a `{`
 * after it.)
 */
function parseInto(data: unknown[], runs: string[], segment: readonly string[]): boolean {
  const run = segment.join("");
  let elements: unknown[];
  try {
    elements = JSON.parse(`[${run}]`) as unknown[];
  } catch {
    return false;
  }
  for (const element of elements) data.push(element);
  runs.push(run);
  return true;
}
