import type pg from "pg";

/**
 * Ends a `pg` pool and resolves once every one of its connections has closed. `pool.end()`
 * resolves as soon as its clients are told to end, before their sockets close: a server that
 * ends such a connection in that moment (a restart, `DROP DATABASE … WITH (FORCE)`) makes the
 * closing client fail with 57P01, and the pool emits that as an `error` event after its owner
 * believed it closed. Waiting for each client's `remove` leaves nothing behind.
 */
export async function endPool(pool: pg.Pool): Promise<void> {
  const open = pool.totalCount;
  let removed = 0;
  const allClosed = new Promise<void>((resolve) => {
    if (open === 0) resolve();
    pool.on("remove", () => {
      removed += 1;
      if (removed >= open) resolve();
    });
  });
  await pool.end();
  await allClosed;
}
