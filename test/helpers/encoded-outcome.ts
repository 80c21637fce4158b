/**
 * What an agent request's conversion and encoding came to, for comparing two ways of doing
 * them: the messages (with the bytes spent from the expansion budget), or the refusal as it is
 * answered.
 */
import { ApiError } from "../../edge/http/errors.ts";
import { LineRefusal } from "../../edge/influx/influx-metrics.ts";
import type { ExpansionBudget } from "../../edge/publish/expansion-budget.ts";
import type { EncodedMessage } from "../../shared/envelope-encoder.ts";

/** What a conversion and its encoding came to: the messages, or the refusal as answered. */
export type Outcome =
  | {
      readonly messages: readonly { id: string; text: string; metrics: number }[];
      readonly spentBytes: number;
    }
  | {
      readonly refused: {
        status: number;
        code: string;
        message: string;
        details: unknown;
        line: number | undefined;
      };
    };

/** The messages, with the bytes the budget was spent by, or the refusal as it is answered. */
export function outcome(
  budget: ExpansionBudget,
  encode: (budget: ExpansionBudget) => readonly EncodedMessage[],
): Outcome {
  try {
    const messages = encode(budget).map(({ id, data, metrics }) => ({
      id,
      text: Buffer.from(data).toString(),
      metrics,
    }));
    return { messages, spentBytes: budget.spentBytes };
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    const { status, code, message, details } = err;
    const line = err instanceof LineRefusal ? err.line : undefined;
    return { refused: { status, code, message, details, line } };
  }
}
