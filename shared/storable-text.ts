/**
 * Text every database can store: no NUL character (PostgreSQL's text and jsonb refuse it) and no
 * lone UTF-16 surrogate (not valid Unicode; jsonb refuses it and UTF-8 cannot encode it).
 * Refused here, at the edge, so that the worker never meets a metric it cannot store. Apart from
 * the metric schema, so that naming the refusal (`toDetails`) does not load TypeBox.
 */
export const STORABLE_TEXT = "^[^\\u0000\\p{Cs}]*$";

/** Any text at all: what a record's property names may be (the schema bounds them apart). */
export const ANY_TEXT = "^[\\s\\S]*$";

/** Whether `text` matches `STORABLE_TEXT`: well-formed UTF-16 (no lone surrogate), no NUL. */
export function isStorableText(text: string): boolean {
  return text.isWellFormed() && !text.includes("\u0000");
}

/**
 * `STORABLE_TEXT` answered without a regular expression: a string matches it exactly when it
 * is well-formed UTF-16 (no lone surrogate) and holds no NUL. The compiled validators test it on
 * every string of every metric; natively, a metric is validated in 15–25% less time
 * (bench/notes.md).
 */
const STORABLE = {
  test: (text: string): boolean => isStorableText(text),
  toString: (): string => `/${STORABLE_TEXT}/u`,
};

const ANY = { test: (): boolean => true, toString: (): string => `/${ANY_TEXT}/u` };

/**
 * The regular expressions of the schemas, as ajv makes them (its `code.regExp` option; `code`
 * is the name the generated validators call it by): `STORABLE_TEXT` and `ANY_TEXT` as above,
 * any other pattern as a `RegExp`.
 */
export const schemaPattern = Object.assign(
  (pattern: string, flags: string): { test(text: string): boolean } => {
    if (flags === "u" && pattern === STORABLE_TEXT) return STORABLE;
    if (flags === "u" && pattern === ANY_TEXT) return ANY;
    return new RegExp(pattern, flags);
  },
  { code: "schemaPattern" },
);
