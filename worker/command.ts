/**
 * How a worker process starts, wherever one does: the Dockerfile's CMD and `npm run worker` (a
 * unit test holds both to this), `npm start`, the tests and the benchmarks.
 *
 * Node's garbage collector is tuned for a process with memory to spare: V8 grows the young
 * generation to 128 MB here, and lets the old generation grow up to four times what survived
 * its last collection. A worker's garbage comes a batch at a time (decoded envelopes, rows, the
 * PostgreSQL parameter), so its peak followed those allowances, not what it holds. Draining a
 * million metrics in four shapes (100- and 1,000-metric messages, into SQLite and PostgreSQL),
 * one after another on one machine (bench/notes.md):
 * - neither flag: ~300 MB into PostgreSQL;
 * - `--max-semi-space-size=8` (a 16 MB young generation): 183–227 MB;
 * - and `--heap-growing-percent=50` (the old generation grows by half, then is collected):
 *   145–160 MB, at the same rates (100,000–116,000 metrics/s into PostgreSQL);
 * - `--optimize-for-size` instead: 121–135 MB, but a quarter slower.
 */
export const WORKER_NODE_ARGS: readonly string[] = [
  "--max-semi-space-size=8",
  "--heap-growing-percent=50",
  "worker/main.ts",
];
