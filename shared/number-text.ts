/**
 * Whether a number's text, as a sender wrote it, is already what `String(Number(text))` would
 * write: then it can be stored as it came, and the number need not be written out again (a
 * double's shortest text costs ~0.1 µs, some 5% of a line-protocol request at the edge).
 */

const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * True when `text` (up to `end`) is a decimal exactly as JavaScript writes its number: no
 * exponent, no `+`, no leading zero but the one before a point, no zero ending a fraction, no
 * `-0`, between 1e-6 and 1e21 (where JavaScript writes no exponent), and of at most 15
 * significant digits. Every decimal of at most 15 significant digits is the only one that short
 * to read as its double (a double holds 15 decimal digits exactly), so JavaScript, which writes
 * the shortest, writes those same digits back (test/unit/number-text.test.ts). False says
 * nothing: the text may be written that way all the same.
 */
export function isShortestNumberText(text: string, end = text.length): boolean {
  let i = text.charCodeAt(0) === MINUS ? 1 : 0;
  const negative = i === 1;
  const intStart = i;
  while (i < end && isDigit(text.charCodeAt(i))) i++;
  const intDigits = i - intStart;
  if (intDigits === 0 || intDigits > 15) return false;
  const zeroInteger = text.charCodeAt(intStart) === ZERO;
  if (zeroInteger && intDigits > 1) return false;
  // An integer: JavaScript writes zero without its sign.
  if (i === end) return !(zeroInteger && negative);
  if (text.charCodeAt(i) !== DOT) return false;
  const fractionStart = ++i;
  while (i < end && isDigit(text.charCodeAt(i))) i++;
  const fractionDigits = end - fractionStart;
  if (i !== end || fractionDigits === 0 || text.charCodeAt(end - 1) === ZERO) return false;
  if (!zeroInteger) return intDigits + fractionDigits <= 15;
  // Below 1: the zeros after the point are not significant, and six of them make an exponent.
  let zeros = 0;
  while (text.charCodeAt(fractionStart + zeros) === ZERO) zeros++;
  return zeros <= 5 && fractionDigits - zeros <= 15;
}

function isDigit(code: number): boolean {
  return code >= ZERO && code <= NINE;
}
