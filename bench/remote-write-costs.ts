/**
 * What one batch costs the worker's remote-write store before the network, in-process: 100
 * version 4 messages of 100 samples over 8 series (as bench/remote-write-drain.ts fills the
 * stream, the messages out of order as concurrent publishers leave them), decoded, gathered into
 * series from their columns and written as a compressed `WriteRequest`. Medians of CPU time per
 * batch of 10,000 samples. Run: `node bench/remote-write-costs.ts`; with `--cpu-prof`, the
 * profile covers the batches (and making them).
 */
import { runToEnd } from "../shared/cooperative.ts";
import { decodeMessage } from "../shared/envelope.ts";
import { encodeSeriesMessagesV4 } from "../test/helpers/envelope-v4-by-metric.ts";
import { seriesOfMessages } from "../worker/remote-write-labels.ts";
import { encodeWriteRequest } from "../worker/remote-write-request.ts";
import { median } from "./support.ts";

const BATCHES = 20;
const MESSAGES = 100;
const PER_MESSAGE = 100;
const ROUNDS = 200;
const BASE_MS = Date.parse("2026-11-01T00:00:00Z");

const batches = Array.from({ length: BATCHES }, (_, b) =>
  Array.from({ length: MESSAGES }, (_, k) => {
    const m = b * MESSAGES + ((k * 37) % MESSAGES);
    const metrics = Array.from({ length: PER_MESSAGE }, (_, i) => ({
      name: "bench_cpu",
      value: (m * PER_MESSAGE + i) % 997,
      timestamp: BASE_MS + m * PER_MESSAGE + i,
      tags: { host: `web-${i % 8}`, run: "costs" },
    }));
    const [message] = runToEnd(encodeSeriesMessagesV4(metrics, Date.now(), 1024 * 1024));
    if (message === undefined) throw new Error("no message");
    return message.data;
  }),
);

const times: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const batch = batches[round % BATCHES] ?? [];
  const start = process.cpuUsage();
  const messages = batch.map((data) => {
    const decoded = decodeMessage(data);
    if (!decoded.ok) throw new Error(decoded.message);
    return decoded;
  });
  const body = encodeWriteRequest(seriesOfMessages(messages, undefined).series);
  const used = process.cpuUsage(start);
  if (body.length === 0) throw new Error("empty request");
  // The first rounds warm the code and the memos up.
  if (round >= 2 * BATCHES) times.push(used.user + used.system);
}
const perBatch = median(times);
console.log(
  `${Math.round(perBatch)} µs per batch of ${MESSAGES * PER_MESSAGE} samples, ` +
    `${(perBatch / (MESSAGES * PER_MESSAGE)).toFixed(3)} µs per sample`,
);
