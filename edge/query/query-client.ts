import { ErrorCode, NatsError } from "nats";
import type { ConnectionProvider } from "../../shared/nats-connection.ts";
import { QUERY_LIMITS } from "../../shared/query-limits.ts";
import {
  querySubject,
  type QueryAnswer,
  type QueryEndpoint,
  type RangeQuery,
  type RangeSeries,
  type SeriesEntry,
  type SeriesQuery,
} from "../../shared/query-protocol.ts";
import { ApiError } from "../http/errors.ts";

/** Asks the workers' query service; answers their series, or throws the refusal to send. */
export interface QueryClient {
  series(q: SeriesQuery): Promise<SeriesEntry[]>;
  range(q: RangeQuery): Promise<RangeSeries[]>;
}

export interface QueryClientOptions {
  readonly connections: ConnectionProvider;
  /** The stream the workers consume: its query service listens under `query.<stream>`. */
  readonly streamName: string;
  readonly timeoutMs?: number;
}

/**
 * The edge's side of the query service: one NATS request per read, answered by one worker.
 * No worker listening (no responders) and no answer in time are both `query_unavailable`: the
 * metrics are safe in the stream, there is just nobody to read them back right now.
 */
export function createQueryClient(options: QueryClientOptions): QueryClient {
  const timeout = options.timeoutMs ?? QUERY_LIMITS.timeoutMs;

  async function ask<T>(endpoint: QueryEndpoint, q: unknown): Promise<T[]> {
    let nc;
    try {
      nc = await options.connections.get();
    } catch (err) {
      throw new ApiError("nats_unavailable", "The message broker cannot be reached.", {
        cause: err,
      });
    }
    let msg;
    try {
      msg = await nc.request(querySubject(options.streamName, endpoint), JSON.stringify(q), {
        timeout,
      });
    } catch (err) {
      if (err instanceof NatsError && err.code === (ErrorCode.NoResponders as string)) {
        throw new ApiError(
          "query_unavailable",
          "No worker is answering queries; metrics accepted meanwhile are kept in the stream.",
          { cause: err },
        );
      }
      if (err instanceof NatsError && err.code === (ErrorCode.Timeout as string)) {
        throw new ApiError(
          "query_unavailable",
          `No worker answered the query within ${timeout} ms.`,
          { cause: err },
        );
      }
      throw new ApiError("nats_unavailable", "The message broker cannot be reached.", {
        cause: err,
      });
    }
    const answer = msg.json<QueryAnswer<T>>();
    if (answer.status === "ok") return answer.series;
    const { code, message } = answer.error;
    if (code === "internal_error") throw new Error(`a worker failed to answer: ${message}`);
    throw new ApiError(code, message);
  }

  return {
    series: (q) => ask<SeriesEntry>("series", q),
    range: (q) => ask<RangeSeries>("query_range", q),
  };
}
