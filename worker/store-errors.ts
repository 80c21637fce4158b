/**
 * Errors a store may reject an insert with, beyond "the database failed" (any other error, which
 * makes the whole batch retry). Additive to the `MetricStore` contract: a store that never throws
 * these (SQLite, PostgreSQL) needs nothing of them.
 */

/**
 * Some rows can never be stored: the receiver refused them for good (a 4xx other than 429 from a
 * remote-write receiver). Every row not named here is stored (committed, or found stored), so
 * the messages holding only such rows are acked and the others dead-lettered, each with the
 * receiver's answer as its reason.
 */
export class RejectedRows extends Error {
  /** Why each refused row was refused, by its index in the rows given to `insert`. */
  readonly rejected: ReadonlyMap<number, string>;
  /** Rows the insert added, as `insert` would have resolved to. */
  readonly rowsAdded: number;

  constructor(rejected: ReadonlyMap<number, string>, rowsAdded: number) {
    super(`${rejected.size} rows refused for good; the others were stored`);
    this.name = "RejectedRows";
    this.rejected = rejected;
    this.rowsAdded = rowsAdded;
  }
}
