import type { NatsConnection, Service, ServiceMsg } from "nats";
import type { Logger } from "../shared/logger.ts";
import { maxPayloadOf } from "../shared/nats-connection.ts";
import {
  QUERY_SERVICE_NAME,
  QUERY_SERVICE_VERSION,
  QueryRefusal,
  queryGroup,
  readRangeQuery,
  readSeriesQuery,
  type QueryAnswer,
} from "../shared/query-protocol.ts";
import { answerRange, answerSeries } from "./query-answers.ts";
import type { QueryStore } from "./query-store.ts";

export interface QueryServiceOptions {
  readonly nc: NatsConnection;
  readonly store: QueryStore;
  /** The stream this worker consumes: its endpoints listen under `query.<stream>`. */
  readonly streamName: string;
  /** `sqlite` or `postgres`, shown in the service's metadata. */
  readonly database: string;
  /**
   * What each endpoint's stats carry as `data`: the worker's counters (metrics stored so far),
   * from which the page computes the store's write rate.
   */
  readonly counters: () => Promise<Record<string, number>>;
  readonly logger: Logger;
}

/** Status codes of the micro protocol's `Nats-Service-Error-Code` header, as HTTP's. */
const ERROR_STATUS = { invalid_query: 400, query_too_large: 400, internal_error: 500 } as const;

/**
 * Registers this worker in the query service (the `nats` package's services API): every worker
 * of a stream joins one queue group, so each request is answered by one of them from its store.
 * The service answers the micro protocol's ping, info and stats, which is how the edge counts
 * the workers answering. Requests and answers are JSON (`shared/query-protocol.ts`).
 */
export async function startQueryService(options: QueryServiceOptions): Promise<Service> {
  const { nc, store, logger } = options;
  const service = await nc.services.add({
    name: QUERY_SERVICE_NAME,
    version: QUERY_SERVICE_VERSION,
    description: "Reads stored metrics back: series and step aggregates over a time range.",
    metadata: { stream: options.streamName, database: options.database },
    statsHandler: () => options.counters(),
  });
  const group = service.addGroup(queryGroup(options.streamName));

  const serve =
    (answer: (body: unknown) => Promise<unknown[]>) =>
    (err: Error | null, msg: ServiceMsg): void => {
      if (err) {
        logger.error({ err }, "query service subscription failed");
        return;
      }
      void respond(msg, answer);
    };

  async function respond(msg: ServiceMsg, answer: (body: unknown) => Promise<unknown[]>) {
    let body: QueryAnswer<unknown>;
    try {
      body = { status: "ok", series: await answer(parse(msg)) };
    } catch (err) {
      const refusal =
        err instanceof QueryRefusal
          ? err
          : new QueryRefusal("internal_error", "The worker failed to answer the query.");
      if (!(err instanceof QueryRefusal)) logger.error({ err }, "query failed");
      body = { status: "error", error: { code: refusal.code, message: refusal.message } };
    }
    let data = new TextEncoder().encode(JSON.stringify(body));
    const maxPayload = maxPayloadOf(nc);
    if (data.byteLength > maxPayload) {
      const error = {
        code: "query_too_large" as const,
        message: `The answer would be ${data.byteLength} bytes, over the limit of ${maxPayload} (the NATS server's max_payload); narrow the query.`,
      };
      body = { status: "error", error };
      data = new TextEncoder().encode(JSON.stringify(body));
    }
    if (body.status === "ok") msg.respond(data);
    else msg.respondError(ERROR_STATUS[body.error.code], body.error.message, data);
  }

  group.addEndpoint("series", {
    handler: serve(async (body) => {
      const q = readSeriesQuery(body);
      if (q instanceof QueryRefusal) throw q;
      return answerSeries(store, q);
    }),
    metadata: { description: "distinct series by name and tags" },
  });
  group.addEndpoint("query_range", {
    handler: serve(async (body) => {
      const q = readRangeQuery(body);
      if (q instanceof QueryRefusal) throw q;
      return answerRange(store, q);
    }),
    metadata: { description: "one aggregate per step bucket of a time range" },
  });
  return service;
}

function parse(msg: ServiceMsg): unknown {
  try {
    return JSON.parse(msg.string()) as unknown;
  } catch {
    throw new QueryRefusal("invalid_query", "The request is not JSON.");
  }
}
