import { METRIC_BOUNDS } from "./limits.ts";

// RFC 3339 §5.6 date-time: "T" or a space between date and time, any number of fraction digits
// (kept to milliseconds), "Z" or a numeric offset. Letters are case-insensitive.
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Milliseconds since the epoch of an RFC 3339 date-time, or undefined when the text is not one,
 * names a day that does not exist (2024-02-30), or falls outside 1970–9999. `Date.parse` is not
 * used because it accepts impossible days and other formats. Leap seconds (:60) are refused.
 */
export function parseRfc3339(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const millis = Number((m[7] ?? "0").padEnd(3, "0").slice(0, 3));
  // Date.UTC reads years 0–99 as 1900–1999; none of them is in range anyway. (1969 with a
  // negative offset can still be a 1970 instant, which the range check below decides.)
  if (year < 1969) return undefined;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const offHours = Number(m[10]);
    const offMinutes = Number(m[11]);
    if (offHours > 23 || offMinutes > 59) return undefined;
    offsetMinutes = (m[9] === "-" ? -1 : 1) * (offHours * 60 + offMinutes);
  }
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, millis) - offsetMinutes * 60_000;
  return isInRange(ms) ? ms : undefined;
}

/** The metric schemas' `rfc3339-date-time` format: a date-time `parseRfc3339` can read. */
export function isRfc3339(text: string): boolean {
  return parseRfc3339(text) !== undefined;
}

/** True for an integer timestamp the service accepts. */
export function isInRange(ms: number): boolean {
  return (
    Number.isInteger(ms) && ms >= METRIC_BOUNDS.minTimestampMs && ms <= METRIC_BOUNDS.maxTimestampMs
  );
}

/** The time a metric was measured: its own timestamp, else the time its request was received. */
export function measurementTimeMs(
  timestamp: string | number | undefined,
  receivedAtMs: number,
): number {
  if (timestamp === undefined) return receivedAtMs;
  if (typeof timestamp === "number") return timestamp;
  const ms = parseRfc3339(timestamp);
  // The schema admits only strings that parse, so this is a bug, not bad input.
  if (ms === undefined) throw new Error(`timestamp passed validation but does not parse`);
  return ms;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  // 31 for January, March, May, July, August, October and December; 30 for the others.
  return 30 + ((month + (month >> 3)) & 1);
}

const NANOS_PER_MS = 1_000_000n;

/**
 * The time a metric was measured in nanoseconds since the epoch, exactly: RFC 3339 fractions
 * keep all nine digits (an offset is whole minutes, so it never moves the sub-millisecond part).
 */
export function measurementTimeNs(
  timestamp: string | number | undefined,
  receivedAtMs: number,
): bigint {
  const ms = BigInt(measurementTimeMs(timestamp, receivedAtMs));
  if (typeof timestamp !== "string") return ms * NANOS_PER_MS;
  const fraction = RFC3339.exec(timestamp)?.[7] ?? "";
  const subMillisecond = BigInt(fraction.padEnd(9, "0").slice(3, 9));
  return ms * NANOS_PER_MS + subMillisecond;
}

/**
 * RFC 3339 in UTC with all nine fraction digits, for a time in nanoseconds since the epoch; how
 * the agent protocols' timestamps are written into a metric, so no precision is lost. Undefined
 * when the time is outside the range every metric must be in (1970–9999).
 */
export function rfc3339FromNanos(ns: bigint): string | undefined {
  if (ns < 0n) return undefined;
  const ms = Number(ns / NANOS_PER_MS);
  if (!isInRange(ms)) return undefined;
  const subMillisecond = String(ns % NANOS_PER_MS).padStart(6, "0");
  // toISOString gives exactly "YYYY-MM-DDTHH:MM:SS.mmmZ" for years 1970–9999.
  return `${new Date(ms).toISOString().slice(0, -1)}${subMillisecond}Z`;
}

/** "YYYY-MM-DDTHH:MM:SS.fffffffffZ": what `rfc3339FromNanos` writes. */
const CANONICAL_LENGTH = 30;
const ZERO = 48;

/**
 * Milliseconds since the epoch of a time exactly as `rfc3339FromNanos` writes it, read digit by
 * digit without a regular expression; undefined for any other text, even a valid date-time
 * (then `parseRfc3339` decides). The agent protocols' metrics carry such times, so their checks
 * and series keys need not parse them in general.
 */
export function canonicalTimeMs(text: string): number | undefined {
  if (text.length !== CANONICAL_LENGTH) return undefined;
  if (
    text.charCodeAt(4) !== 45 || // -
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 84 || // T
    text.charCodeAt(13) !== 58 || // :
    text.charCodeAt(16) !== 58 ||
    text.charCodeAt(19) !== 46 || // .
    text.charCodeAt(29) !== 90 // Z
  ) {
    return undefined;
  }
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  const millis = digits(text, 20, 3);
  if (digits(text, 23, 6) < 0 || millis < 0 || year < 1970) return undefined;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) {
    return undefined;
  }
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  return isInRange(ms) ? ms : undefined;
}

/** The decimal number of `length` digits at `start`, or -1 when any is not a digit. */
function digits(text: string, start: number, length: number): number {
  let n = 0;
  for (let i = start; i < start + length; i++) {
    const d = text.charCodeAt(i) - ZERO;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * `measurementTimeNs` as decimal text, as series keys write it, without BigInt arithmetic or a
 * general parse for integer milliseconds and for times as `rfc3339FromNanos` writes them.
 */
export function measurementTimeNsText(
  timestamp: string | number | undefined,
  receivedAtMs: number,
): string {
  const ms =
    timestamp === undefined
      ? receivedAtMs
      : typeof timestamp === "number"
        ? timestamp
        : canonicalTimeMs(timestamp);
  // Past 0 ms, the time in ns is the milliseconds followed by six more digits.
  if (ms === undefined || ms <= 0 || !Number.isInteger(ms)) {
    return String(measurementTimeNs(timestamp, receivedAtMs));
  }
  return typeof timestamp === "string" ? `${ms}${timestamp.slice(23, 29)}` : `${ms}000000`;
}
