import { ApiError } from "../http/errors.ts";
import { EXPANSION_LIMITS } from "../../shared/limits.ts";

/**
 * What one request may become (`EXPANSION_LIMITS`), spent metric by metric as its metrics are
 * made: the first metric past the bound refuses the request (413), so refusing a request costs
 * no more than the bound itself, however much more its body would have become.
 */
export class ExpansionBudget {
  /** The most bytes the request's stored metrics may total. */
  readonly limitBytes: number;
  readonly #bodyBytes: number;
  #spentBytes = 0;
  /** Each tag set's JSON size, by object: many metrics of a request share one. */
  readonly #tagBytes = new WeakMap<object, number>();

  /** A request's budget: by default, the bound for its decoded body. */
  constructor(decodedBodyBytes: number, limitBytes = expansionLimitBytes(decodedBodyBytes)) {
    this.#bodyBytes = decodedBodyBytes;
    this.limitBytes = limitBytes;
  }

  get spentBytes(): number {
    return this.#spentBytes;
  }

  /**
   * Spends a metric's size as stored (its JSON, tags included) and returns that size; throws
   * the refusal when the request's metrics now total more than the bound.
   */
  spend(metric: unknown): number {
    return this.spendBytes(this.#storedBytes(metric));
  }

  /** Spends `bytes` measured by the caller (a point of a series whose size is known), as `spend`. */
  spendBytes(bytes: number): number {
    this.#spentBytes += bytes;
    if (this.#spentBytes > this.limitBytes) throw this.#refusal();
    return bytes;
  }

  /** JSON size of a metric, measuring a tag set shared with earlier metrics only once. */
  #storedBytes(metric: unknown): number {
    const tags = (metric as { tags?: unknown } | null)?.tags;
    if (typeof tags !== "object" || tags === null) return jsonBytes(metric);
    let tagBytes = this.#tagBytes.get(tags);
    if (tagBytes === undefined) {
      tagBytes = jsonBytes(tags);
      this.#tagBytes.set(tags, tagBytes);
    }
    // JSON leaves out a property whose value is undefined.
    const restBytes = jsonBytes({ ...(metric as object), tags: undefined });
    // `{…rest,"tags":{…}}`: the comma only when rest has members.
    return restBytes + (restBytes > 2 ? 1 : 0) + TAGS_KEY_BYTES + tagBytes;
  }

  #refusal(): ApiError {
    const { bodyMultiple, maxBytes } = EXPANSION_LIMITS;
    const what = `The request's metrics take more than ${this.limitBytes} bytes as stored (each metric as JSON with all its tags)`;
    const advice = "send fewer points per request, or fewer or shorter tags";
    if (this.limitBytes < maxBytes) {
      return new ApiError(
        "expansion_over_ratio",
        `${what}: more than ${bodyMultiple} times the ${this.#bodyBytes} bytes of the decoded body; ${advice}.`,
      );
    }
    return new ApiError(
      "expansion_over_limit",
      `${what}, the most any request may become; ${advice}.`,
    );
  }
}

/** The bound for a body of `decodedBodyBytes`: a multiple of it, within the floor and the cap. */
export function expansionLimitBytes(decodedBodyBytes: number): number {
  const { bodyMultiple, floorBytes, maxBytes } = EXPANSION_LIMITS;
  return Math.min(maxBytes, Math.max(floorBytes, bodyMultiple * decodedBodyBytes));
}

const TAGS_KEY_BYTES = '"tags":'.length;

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}
