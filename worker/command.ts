/**
 * How a worker process starts, wherever one does: the Dockerfile's CMD and `npm run worker` (a
 * unit test holds both to this), `npm start`, the tests and the benchmarks.
 *
 * `--max-semi-space-size=8`: V8 grows its young generation to 128 MB on a machine with memory
 * to spare, and a batch's rows and its PostgreSQL parameter are garbage of exactly that kind. At
 * 8 MB semi-spaces (16 MB together), a worker draining a million metrics into PostgreSQL peaked
 * at about 200 MB instead of 300 MB, storing as fast (bench/notes.md).
 */
export const WORKER_NODE_ARGS: readonly string[] = ["--max-semi-space-size=8", "worker/main.ts"];
