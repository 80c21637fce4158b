import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import type { TSchema } from "@sinclair/typebox";
import { Envelope } from "./envelope-schema.ts";
import type { ErrorDetail } from "./errors.ts";
import { JsonBody, Metric, RFC3339_FORMAT, STORABLE_TEXT } from "./metric-schema.ts";
import { parseRfc3339 } from "./timestamp.ts";

/**
 * The one ajv instance for untrusted data. No type coercion and no defaults: a metric is stored
 * exactly as it was sent. `allErrors` lets an answer name every bad field; it is safe here
 * because every input is bounded in size before it is validated.
 */
const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
ajv.addFormat(RFC3339_FORMAT, { type: "string", validate: (s) => parseRfc3339(s) !== undefined });

function compile<T extends TSchema>(schema: T): ValidateFunction<T["static"]> {
  return ajv.compile<T["static"]>(schema);
}

// The metric schema first: the envelope schema refers to it by its $id.
export const validateMetric = compile(Metric);
export const validateJsonBody = compile(JsonBody);
export const validateEnvelope = compile(Envelope);

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
