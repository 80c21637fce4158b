import type { MetricRow, StorableMessage } from "./metric-rows.ts";

/**
 * Where metrics end up. Each implementation owns its schema and creates it when opened.
 * This file is the contract only: the stores import it, and `open-store.ts` picks one of them.
 */
export interface MetricStore {
  /**
   * Stores the rows in one transaction, skipping any whose identity (series and time) is already
   * stored, and resolves only once that transaction committed. Resolves to the number of rows
   * added.
   */
  insert(rows: readonly MetricRow[]): Promise<number>;
  /**
   * Stores a batch as its messages, for a store that needs no row per sample (remote write):
   * as `insert` would store their rows measured at or after `cutoffMs`, and what became of each
   * message. Stores without it are given the rows (worker/insert-messages.ts).
   */
  insertMessages?(
    messages: readonly StorableMessage[],
    cutoffMs: number | undefined,
  ): Promise<MessagesInserted>;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * Deletes the samples measured before `cutoffMs`, without holding up inserts for long;
   * resolves to how many were deleted (PostgreSQL: of the partitions dropped). Stores that keep
   * no samples of their own leave it out.
   */
  enforceRetention?(cutoffMs: number): Promise<number>;
  /** What opening the store migrated from an older schema, when it did. */
  readonly migrated?: Migrated | undefined;
}

/** What a batch's insert did, message by message. */
export interface MessagesInserted {
  /** Rows the commit added; fewer than were given when some were stored before (a redelivery). */
  readonly added: number;
  /** Rows of each message within the retention window, by its index in the batch. */
  readonly kept: readonly number[];
  /** Rows measured before the retention window's start: not stored. */
  readonly expired: number;
  /**
   * The messages none of whose rows can ever be stored (a remote-write receiver refused them for
   * good), by index, with the reason; every other message's rows are stored.
   */
  readonly rejected: ReadonlyMap<number, string>;
}

/** Rows of an older schema moved into the current one when the store was opened. */
export interface Migrated {
  readonly rows: number;
  /** Rows that had the same identity (series and time) as one moved before them. */
  readonly collapsed: number;
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
