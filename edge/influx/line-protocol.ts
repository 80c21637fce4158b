/**
 * A parser of InfluxDB line protocol, the text format of InfluxDB's write API, Telegraf and the
 * influx client libraries:
 *
 *   measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]
 *
 * It follows the grammar of influxdata/line-protocol (v2): sections separated by spaces; a
 * backslash escapes the characters that would end the token (comma and space in a measurement;
 * comma, equals sign and space in tag keys, tag values and field keys; double quote and
 * backslash in a string field value) and is kept as it is before any other character; lines end
 * with LF or CRLF; blank lines and lines starting with `#` are skipped; a quoted string may span
 * lines. Work is linear in the text: one pass, no backtracking, no regular expression that can
 * backtrack, and numbers too long for their type are refused before they are converted.
 */
import { isShortestNumberText } from "../../shared/number-text.ts";

/** A field's value, typed as the line wrote it. */
export type FieldValue =
  | {
      readonly type: "float";
      readonly value: number;
      /** The value as the line wrote it, when that is how JavaScript writes it; else undefined. */
      readonly text: string | undefined;
    }
  | { readonly type: "integer"; readonly value: bigint }
  | { readonly type: "unsigned"; readonly value: bigint }
  | { readonly type: "boolean"; readonly value: boolean }
  | { readonly type: "string"; readonly value: string };

/** One point: a line of the text, unescaped. */
export interface LinePoint {
  /** The line it starts on, from 1. */
  readonly line: number;
  readonly measurement: string;
  /**
   * The measurement and tag set as written: lines with the same `head` have the same
   * measurement and tags, so what is made of those can be made once per head.
   */
  readonly head: string;
  /** In the line's order; no key twice. */
  readonly tags: readonly (readonly [key: string, value: string])[];
  /** In the line's order, at least one; no key twice. */
  readonly fields: readonly (readonly [key: string, value: FieldValue])[];
  /** As written, in the request's precision; undefined when the line has none. */
  readonly timestamp: bigint | undefined;
}

/** The parser's one refusal: what is wrong, and where (line and column from 1). */
export class LineProtocolError extends Error {
  readonly line: number;
  readonly column: number;
  readonly reason: string;

  constructor(line: number, column: number, reason: string) {
    super(`line ${line}, column ${column}: ${reason}`);
    this.name = "LineProtocolError";
    this.line = line;
    this.column = column;
    this.reason = reason;
  }
}

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const HASH = 0x23;
const COMMA = 0x2c;
const EQUALS = 0x3d;
const BACKSLASH = 0x5c;

/** The characters a backslash escapes in a measurement, and in keys and tag values. */
const MEASUREMENT_ESCAPES = new Set([SPACE, COMMA]);
const KEY_ESCAPES = new Set([SPACE, COMMA, EQUALS]);

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

const BOOLEANS: ReadonlyMap<string, boolean> = new Map([
  ...["t", "T", "true", "True", "TRUE"].map((word) => [word, true] as const),
  ...["f", "F", "false", "False", "FALSE"].map((word) => [word, false] as const),
]);

// Each alternative starts differently and no quantified part can match what follows it, so
// these never backtrack more than one character.
const FLOAT = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const SIGNED_DIGITS = /^-?\d+$/;
const DIGITS = /^\d+$/;
const NUMBER_START = /^[-.\d]/;

/**
 * The points of a line-protocol text, in order. Throws a LineProtocolError naming the first
 * line that breaks the syntax, when the iteration reaches it (points before it have been
 * yielded). Nothing else is ever thrown.
 */
export function* parseLineProtocol(text: string): Generator<LinePoint, void, undefined> {
  const s = new Scanner(text);
  for (;;) {
    s.skipSpaces();
    if (s.pos >= text.length) return;
    if (s.consumeLineEnd()) continue;
    if (s.code() === HASH) {
      s.skipComment();
      continue;
    }
    yield readPoint(s);
  }
}

/** A position in the text, with the line it is on. */
class Scanner {
  readonly text: string;
  pos = 0;
  line = 1;
  /** Where the current line starts. */
  lineStart = 0;
  /** Heads read so far that a space ended, by their text. */
  readonly heads = new Map<string, Head>();
  /** The last timestamp read, as written and as read. */
  lastTimestamp: { readonly token: string; readonly value: bigint } | undefined;

  constructor(text: string) {
    this.text = text;
  }

  /** The character code at `pos + ahead`, or NaN past the end. */
  code(ahead = 0): number {
    return this.text.charCodeAt(this.pos + ahead);
  }

  /** True at the end of the text or of a line (LF, or CR LF). */
  atLineEnd(): boolean {
    const c = this.code();
    return Number.isNaN(c) || c === LF || (c === CR && this.code(1) === LF);
  }

  /** Steps over a line ending, if one is here. */
  consumeLineEnd(): boolean {
    const c = this.code();
    const length = c === LF ? 1 : c === CR && this.code(1) === LF ? 2 : 0;
    if (length === 0) return false;
    this.pos += length;
    this.newLine();
    return true;
  }

  /** Records that a line starts at `pos`. */
  newLine(): void {
    this.line++;
    this.lineStart = this.pos;
  }

  skipSpaces(): void {
    while (this.code() === SPACE) this.pos++;
  }

  skipComment(): void {
    const end = this.text.indexOf("\n", this.pos);
    this.pos = end === -1 ? this.text.length : end;
  }

  fail(reason: string, at = this.pos, line = this.line, lineStart = this.lineStart): never {
    throw new LineProtocolError(line, at - lineStart + 1, reason);
  }
}

/** A line's measurement and tag set, read. */
interface Head {
  readonly measurement: string;
  readonly tags: readonly (readonly [key: string, value: string])[];
}

function readPoint(s: Scanner): LinePoint {
  const line = s.line;
  const { text } = s;
  // Lines of a series repeat its head: one read before, and ended by a space there, is read
  // the same way again, so it is taken as read then.
  let head = headAt(s);
  let known = head === undefined ? undefined : s.heads.get(head);
  if (head !== undefined && known !== undefined) s.pos += head.length;
  else {
    const start = s.pos;
    known = readHead(s);
    head = text.slice(start, s.pos);
    if (s.code() === SPACE) s.heads.set(head, known);
  }
  const { measurement, tags } = known;
  if (s.code() === EQUALS) s.fail("an unescaped '=' in a tag value (write it as \\=)");
  if (s.atLineEnd()) s.fail("the point has no fields");
  // readToken stopped at a space: every other stop is handled above.
  s.skipSpaces();
  if (s.atLineEnd()) s.fail("the point has no fields");

  const fields: [string, FieldValue][] = [];
  const fieldKeys = new Keys();
  for (;;) {
    const at = s.pos;
    const key = readToken(s, KEY_ESCAPES, true, "a field key");
    if (key === "") s.fail("a field key is missing");
    if (s.code() !== EQUALS) s.fail(`expected '=' after the field key ${quote(key)}`);
    s.pos++;
    const value = readFieldValue(s, key);
    if (!fieldKeys.add(key)) s.fail(`the field key ${quote(key)} appears twice`, at);
    fields.push([key, value]);
    if (s.code() !== COMMA) break;
    s.pos++;
  }

  let timestamp: bigint | undefined;
  if (s.code() === SPACE) {
    s.skipSpaces();
    if (!s.atLineEnd()) {
      timestamp = readTimestamp(s);
      s.skipSpaces();
      if (!s.atLineEnd()) s.fail("unexpected text after the timestamp");
    }
  }
  if (!s.atLineEnd()) s.fail(`unexpected ${describe(s.code())} after the field value`);
  s.consumeLineEnd();
  return { line, measurement, head, tags, fields, timestamp };
}

/**
 * The text from `pos` to the first space no backslash escapes, if one comes before the line
 * ends: where a head read before would end. (A backslash escapes a space wherever it stands:
 * a backslash before it escapes only what a backslash is not.)
 */
function headAt(s: Scanner): string | undefined {
  const { text, pos } = s;
  for (let i = pos; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === SPACE && text.charCodeAt(i - 1) !== BACKSLASH) return text.slice(pos, i);
    if (c === LF || c === CR) return undefined;
  }
  return undefined;
}

/** The measurement and the tags, up to what ends them (a space, when the line goes on). */
function readHead(s: Scanner): Head {
  const measurement = readToken(s, MEASUREMENT_ESCAPES, false, "the measurement");
  if (measurement === "") s.fail("a measurement name is missing");

  const tags: [string, string][] = [];
  const tagKeys = new Keys();
  while (s.code() === COMMA) {
    s.pos++;
    const at = s.pos;
    const key = readToken(s, KEY_ESCAPES, true, "a tag key");
    if (key === "") s.fail("a tag key is missing after the comma");
    if (s.code() !== EQUALS) s.fail(`expected '=' after the tag key ${quote(key)}`);
    s.pos++;
    const value = readToken(s, KEY_ESCAPES, true, "a tag value");
    if (value === "") s.fail(`the tag ${quote(key)} has no value`);
    if (!tagKeys.add(key)) s.fail(`the tag key ${quote(key)} appears twice`, at);
    tags.push([key, value]);
  }
  return { measurement, tags };
}

/**
 * The keys of a line's tags or fields, to find one written twice: a scan while they are few
 * (most lines hold a handful, and a set per line cost more than its lookups), a set past that.
 */
class Keys {
  readonly #few: string[] = [];
  #many: Set<string> | undefined;

  /** Adds `key`; false when it is there already. */
  add(key: string): boolean {
    if (this.#many !== undefined) {
      if (this.#many.has(key)) return false;
      this.#many.add(key);
      return true;
    }
    if (this.#few.includes(key)) return false;
    this.#few.push(key);
    if (this.#few.length > FEW_KEYS) this.#many = new Set(this.#few);
    return true;
  }
}

const FEW_KEYS = 8;

/**
 * A measurement, key or tag value, unescaped: up to an unescaped space, comma, line end (and
 * equals sign when `stopAtEquals`). Control characters are refused.
 */
function readToken(
  s: Scanner,
  escapes: ReadonlySet<number>,
  stopAtEquals: boolean,
  what: string,
): string {
  const { text } = s;
  let out = "";
  let segment = s.pos;
  let i = s.pos;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) {
      const next = text.charCodeAt(i + 1);
      if (escapes.has(next)) {
        out += text.slice(segment, i);
        segment = i + 1; // the escaped character starts the next segment
        i++;
      }
      continue;
    }
    if (c === SPACE || c === COMMA || (stopAtEquals && c === EQUALS) || c === LF) break;
    if (c === CR && text.charCodeAt(i + 1) === LF) break;
    if (c < SPACE || c === 0x7f) s.fail(`${what} holds the control character ${describe(c)}`, i);
  }
  s.pos = i;
  return out + text.slice(segment, i);
}

function readFieldValue(s: Scanner, key: string): FieldValue {
  if (s.code() === QUOTE) return { type: "string", value: readString(s) };
  const { text } = s;
  const at = s.pos;
  let end = at;
  for (; end < text.length; end++) {
    const c = text.charCodeAt(end);
    if (c === COMMA || c === SPACE || c === LF || c === CR) break;
  }
  s.pos = end;
  const token = text.slice(at, end);
  if (token === "") s.fail(`the field ${quote(key)} has no value`, at);
  const value = scalar(token);
  if (typeof value === "string") s.fail(`the field ${quote(key)} ${value}`, at);
  return value;
}

/** A number or boolean field value, or what is wrong with it. */
function scalar(token: string): FieldValue | string {
  const boolean = BOOLEANS.get(token);
  if (boolean !== undefined) return { type: "boolean", value: boolean };
  if (!NUMBER_START.test(token)) {
    return `has a value that is not a number, boolean or quoted string: ${quote(token)}`;
  }
  const last = token.charCodeAt(token.length - 1);
  if (last === 0x69 /* i */) {
    const value = integer(token.slice(0, -1), SIGNED_DIGITS, INT64_MIN, INT64_MAX);
    if (value === "syntax") return `has a value that is not an integer: ${quote(token)}`;
    if (value === "range") return `has an integer out of the signed 64-bit range: ${quote(token)}`;
    return { type: "integer", value };
  }
  if (last === 0x75 /* u */) {
    const value = integer(token.slice(0, -1), DIGITS, 0n, UINT64_MAX);
    if (value === "syntax") return `has a value that is not an unsigned integer: ${quote(token)}`;
    if (value === "range")
      return `has an integer out of the unsigned 64-bit range: ${quote(token)}`;
    return { type: "unsigned", value };
  }
  if (!FLOAT.test(token)) return `has a value that is not a number: ${quote(token)}`;
  const value = Number(token);
  if (!Number.isFinite(value)) return `has a float out of range: ${quote(token)}`;
  return { type: "float", value, text: isShortestNumberText(token) ? token : undefined };
}

/** An integer of at most 64 bits, converted only once its length says it can be in range. */
function integer(
  digits: string,
  syntax: RegExp,
  min: bigint,
  max: bigint,
): bigint | "syntax" | "range" {
  if (!syntax.test(digits)) return "syntax";
  const negative = digits.startsWith("-");
  const significant = (negative ? digits.slice(1) : digits).replace(/^0+/, "");
  if (significant.length > 20) return "range";
  const value = BigInt(negative ? `-${significant || "0"}` : significant || "0");
  return value < min || value > max ? "range" : value;
}

/** A quoted string field value, unescaped; it may span lines. */
function readString(s: Scanner): string {
  const { text } = s;
  const open = { at: s.pos, line: s.line, lineStart: s.lineStart };
  let out = "";
  let i = s.pos + 1;
  let segment = i;
  for (;;) {
    if (i >= text.length) {
      s.fail("a string field value has no closing quote", open.at, open.line, open.lineStart);
    }
    const c = text.charCodeAt(i);
    if (c === QUOTE) break;
    if (c === BACKSLASH) {
      const next = text.charCodeAt(i + 1);
      if (next === QUOTE || next === BACKSLASH) {
        out += text.slice(segment, i);
        segment = i + 1;
        i += 2;
        continue;
      }
    } else if (c === LF) {
      s.pos = i + 1;
      s.newLine();
    }
    i++;
  }
  s.pos = i + 1;
  return out + text.slice(segment, i);
}

function readTimestamp(s: Scanner): bigint {
  const { text } = s;
  const at = s.pos;
  let end = at;
  for (; end < text.length; end++) {
    const c = text.charCodeAt(end);
    if (c === SPACE || c === LF || c === CR) break;
  }
  s.pos = end;
  const token = text.slice(at, end);
  // The lines of one gathering share its time: the same text is the same timestamp.
  const last = s.lastTimestamp;
  if (last !== undefined && last.token === token) return last.value;
  const value = integer(token, SIGNED_DIGITS, INT64_MIN, INT64_MAX);
  if (value === "syntax") s.fail(`the timestamp is not an integer: ${quote(token)}`, at);
  if (value === "range") s.fail(`the timestamp is out of the 64-bit range: ${quote(token)}`, at);
  s.lastTimestamp = { token, value };
  return value;
}

/** A token for a message: quoted, and cut short when long. */
function quote(token: string): string {
  return JSON.stringify(token.length > 64 ? `${token.slice(0, 64)}…` : token);
}

function describe(code: number): string {
  if (Number.isNaN(code)) return "end of text";
  if (code === TAB) return "tab";
  if (code < SPACE || code === 0x7f) {
    return `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
  }
  return `character ${JSON.stringify(String.fromCharCode(code))}`;
}
