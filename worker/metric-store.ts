import type { MetricRow } from "./metric-rows.ts";

/**
 * Where metrics end up. Each implementation owns its schema and creates it when opened.
 * This file is the contract only: the stores import it, and `open-store.ts` picks one of them.
 */
export interface MetricStore {
  /**
   * Stores the rows in one transaction, skipping any whose `dedupKey` is already stored, and
   * resolves only once that transaction committed. Resolves to the number of rows added.
   */
  insert(rows: readonly MetricRow[]): Promise<number>;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** What a store may be told when opened; a store without the thing named ignores it. */
export interface MetricStoreOptions {
  /**
   * Told of an error on an idle pooled connection (the server restarted, the network broke). The
   * pool has already dropped that connection and opens another when needed; without a listener
   * the error would end the process. Default: a process warning on stderr. PostgreSQL only:
   * SQLite has no pool.
   */
  readonly onPoolError?: (err: Error) => void;
  /** Told of the requests a remote-write store sends. Remote write only. */
  readonly sendTelemetry?: SendTelemetry;
}

/** What a remote-write store tells the worker's `/metrics`. */
export interface SendTelemetry {
  /** A request answered 2xx, holding `samples`, after `seconds` (its retries included). */
  sent(samples: number, seconds: number): void;
  /** A request is about to be sent again (the receiver answered 5xx or 429, or not at all). */
  retried(): void;
  /** Fields of JSON metrics that a sample has no place for, left out. */
  droppedFields(count: number): void;
}
