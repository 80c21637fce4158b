import type { ErrorObject } from "ajv";
import type { ErrorDetail } from "../http/errors.ts";
import { STORABLE_TEXT } from "../../shared/storable-text.ts";

/**
 * ajv's errors as the API's details: one entry per failing field. Where a value failed a union
 * (a timestamp that is neither a date-time nor an integer), the union's own description stands
 * in for the errors of each of its branches.
 */
export function toDetails(index: number, errors: readonly ErrorObject[]): ErrorDetail[] {
  const unions = errors.filter((e) => e.keyword === "anyOf");
  // A union's failure at a path stands for every error at or below that path.
  const summarised = (e: ErrorObject) =>
    unions.some(
      (u) =>
        u !== e &&
        ((e.instancePath === u.instancePath && e.keyword !== "anyOf") ||
          e.instancePath.startsWith(u.instancePath + "/")),
    );
  const details: ErrorDetail[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    // "property name must be valid" follows the property name's own, more specific error.
    if (summarised(e) || e.keyword === "propertyNames") continue;
    const message = describe(e);
    const key = `${e.instancePath}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    details.push({ index, path: e.instancePath, message });
  }
  return details;
}

function describe(e: ErrorObject): string {
  if (e.keyword === "anyOf") {
    const description: unknown = (e.parentSchema as { description?: unknown } | undefined)
      ?.description;
    if (typeof description === "string") return description;
  }
  // JSON.parse turns a number beyond ±1.8e308 (1e400) into ±Infinity: it was a number, too large.
  if (e.keyword === "type" && typeof e.data === "number" && !Number.isFinite(e.data)) {
    return Number.isNaN(e.data)
      ? "must be a number, not NaN"
      : "is out of range: must be a finite number within ±1.7976931348623157e308";
  }
  if (e.keyword === "pattern" && e.params["pattern"] === STORABLE_TEXT) {
    return "must not contain NUL characters or unpaired surrogates";
  }
  if (e.keyword === "additionalProperties") {
    return `must NOT have additional property '${String(e.params["additionalProperty"])}'`;
  }
  if (e.keyword === "required") {
    return `must have required property '${String(e.params["missingProperty"])}'`;
  }
  return e.message ?? "is invalid";
}
