import { ApiError } from "../../edge/http/errors.ts";

/** The ApiError `run` throws; fails the test when it throws nothing or something else. */
export function refusal(run: () => unknown): ApiError {
  try {
    run();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error("expected an ApiError, but nothing was thrown");
}
