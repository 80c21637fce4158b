/**
 * Failed authentication and refused request sources, logged without letting one client fill
 * the log: at most one line a second per client address, counting the attempts since that
 * client's last line, and a running total of every refusal since the process started. Keys are
 * never part of a line.
 */
import type { ErrorCode } from "./errors.ts";
import type { Logger } from "../../shared/logger.ts";

export interface RefusalLog {
  /** Counts one refused request from `client` (an address; undefined when unknown). */
  record(client: string | undefined, code: ErrorCode): void;
  /** Refusals since the process started. */
  total(): number;
}

export interface RefusalLogOptions {
  /** Shortest time between two lines about one client. */
  readonly intervalMs?: number;
  /**
   * Clients followed one by one; refusals from any further address are counted together under
   * `other`, so that a flood from many addresses makes at most this many lines (plus one) a
   * second, and the table of clients stays small.
   */
  readonly maxClients?: number;
}

interface ClientState {
  /** When the last line about this client was written. */
  lastLineAt: number;
  /** Refusals since that line, by code. */
  pending: Map<ErrorCode, number>;
}

const OTHER_CLIENTS = "other";

export function createRefusalLog(logger: Logger, options: RefusalLogOptions = {}): RefusalLog {
  const intervalMs = options.intervalMs ?? 1000;
  const maxClients = options.maxClients ?? 64;
  const clients = new Map<string, ClientState>();
  let total = 0;
  let timer: NodeJS.Timeout | undefined;

  const writeLine = (client: string, state: ClientState, now: number) => {
    let attempts = 0;
    for (const count of state.pending.values()) attempts += count;
    logger.warn(
      { client, attempts, codes: Object.fromEntries(state.pending), total },
      "requests refused: authentication failed or source not allowed",
    );
    state.pending = new Map();
    state.lastLineAt = now;
  };

  // Writes the lines that were held back, and forgets the clients that went quiet.
  const flush = () => {
    timer = undefined;
    const now = Date.now();
    for (const [client, state] of clients) {
      if (now - state.lastLineAt < intervalMs) continue;
      if (state.pending.size > 0) writeLine(client, state, now);
      else clients.delete(client);
    }
    if (clients.size > 0) schedule();
  };
  const schedule = () => {
    // unref: a pending line never keeps a process (or a function instance) alive.
    timer ??= setTimeout(flush, intervalMs).unref();
  };

  return {
    record(address, code) {
      total++;
      const now = Date.now();
      let client = address ?? "unknown";
      if (!clients.has(client) && clients.size >= maxClients) client = OTHER_CLIENTS;
      let state = clients.get(client);
      if (state === undefined) {
        state = { lastLineAt: -Infinity, pending: new Map() };
        clients.set(client, state);
      }
      state.pending.set(code, (state.pending.get(code) ?? 0) + 1);
      if (now - state.lastLineAt >= intervalMs) writeLine(client, state, now);
      schedule();
    },
    total: () => total,
  };
}
