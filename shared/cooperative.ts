import { setImmediate as nextTurn } from "node:timers/promises";

/**
 * How the edge keeps a large request from holding up the others on its one thread: the work
 * that grows with a request (decoding its body, making, checking and encoding its metrics,
 * hashing their series) runs in slices between other requests' turns of the event loop, and
 * large requests compute one at a time, so between two turns of the event loop at most one
 * slice of large work runs, however many large requests are in flight.
 */

/**
 * Work that can pause: a generator that yields (nothing) wherever it may give the event loop a
 * turn, and returns its result. The same code then runs to its end at once (`runToEnd`, for a
 * caller that needs the answer now) or in slices between other requests (`runInSlices`).
 */
export type Steps<T> = Generator<void, T, void>;

/** Runs `steps` to the end without pausing. */
export function runToEnd<T>(steps: Steps<T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** How long work runs before the event loop gets a turn. */
export const SLICE_MS = 2;

/**
 * Runs `steps`, giving the event loop a turn whenever a slice of `SLICE_MS` has passed. Work
 * that ends within its first slice (every small request's) never pauses.
 */
export async function runInSlices<T>(steps: Steps<T>): Promise<T> {
  let sliceEnd = performance.now() + SLICE_MS;
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (performance.now() >= sliceEnd) {
      await nextTurn();
      sliceEnd = performance.now() + SLICE_MS;
    }
  }
}

/**
 * A decoded body from which a request is large: below it, all a request's work (however much
 * its metrics may expand, `EXPANSION_LIMITS`) takes a few slices at most.
 */
export const LARGE_BODY_BYTES = 64 * 1024;

/**
 * Runs a request's work that grows with its body — not its publishing, which waits on the
 * broker — after every large request that came before it has done its own: first come, first
 * served. A request whose decoded body is under `LARGE_BODY_BYTES` runs at once. Work that does
 * not pause by itself (a protobuf body's decoding) then never runs beside another large
 * request's, and only one large request's metrics are alive at a time.
 */
export async function computeInTurn<T>(bodyBytes: number, work: () => Promise<T>): Promise<T> {
  if (bodyBytes < LARGE_BODY_BYTES) return work();
  await largeRequests.acquire();
  try {
    // A turn of the event loop between one large request's work and the next one's.
    await nextTurn();
    return await work();
  } finally {
    largeRequests.release();
  }
}

/** A first-come, first-served lock. */
class Lock {
  #held = false;
  readonly #waiting: (() => void)[] = [];

  acquire(): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#held = false;
  }
}

const largeRequests = new Lock();
