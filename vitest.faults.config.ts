import { defineConfig } from "vitest/config";

/**
 * The fault-injection suite (`npm run test:faults`): each file runs the whole system under one
 * fault. The files run one at a time, since each loads the machine, and take minutes, not seconds.
 */
export default defineConfig({
  test: {
    include: ["test/faults/**/*.fault.ts"],
    // The soak takes 30 minutes: the full suite only, not CI's short run.
    exclude: process.env["FAULTS_SHORT"] === "1" ? ["test/faults/14-soak.fault.ts"] : [],
    testTimeout: 600_000,
    hookTimeout: 120_000,
    pool: "forks",
    fileParallelism: false,
    maxWorkers: 1,
  },
});
