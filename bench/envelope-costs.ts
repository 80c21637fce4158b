/**
 * `node bench/envelope-costs.ts`: envelope version 3 (JSON) against version 4 (JSON columns)
 * for the same agent batches, in-process: the edge's encoding of a 2,000-sample request, the
 * bytes it is published as, and the worker's decoding of those messages into rows
 * (`decodeEnvelope` and `rowsOfEnvelope`). Each protocol's batches are what its handler makes of
 * the bodies of bench/protocol-bodies.ts. Medians of CPU time over `ROUNDS` batches, the two
 * versions taking turns, so that a busy machine moves both alike.
 */
import type { Handler } from "../edge/http/answer-requests.ts";
import { runToEnd } from "../shared/cooperative.ts";
import { encodeSeriesMessages } from "../shared/envelope-encoder.ts";
import { encodeSeriesMessagesV4 } from "../test/helpers/envelope-v4-by-metric.ts";
import { decodeEnvelope } from "../shared/envelope.ts";
import type { Metric } from "../shared/metric-schema.ts";
import { rowsOfEnvelope } from "../worker/metric-rows.ts";
import { inProcessHandlers } from "./in-process-handlers.ts";
import { bodyPool, type Protocol } from "./protocol-bodies.ts";
import { median } from "./support.ts";

const ROUNDS = 200;
const MAX_BYTES = 1024 * 1024 - 1024;

let published: Uint8Array[] = [];
const {
  influx,
  otlp,
  "remote-write": remoteWrite,
} = inProcessHandlers((data) => published.push(data));
/** The agent protocols: the ones that publish series-keyed messages. */
const HANDLERS: Partial<Record<Protocol, readonly [Handler, string]>> = {
  influx,
  otlp,
  "remote-write": remoteWrite,
};

/** The metrics of each body, as the handler made them (read back from what it published). */
async function batchesOf(protocol: Protocol): Promise<{ metrics: Metric[]; receivedAt: number }[]> {
  const [handler, path] = HANDLERS[protocol] ?? [];
  if (handler === undefined) throw new Error(protocol);
  const pool = bodyPool(protocol, 50);
  const batches = [];
  for (const body of pool.bodies) {
    published = [];
    const res = await handler(
      new Request(`http://127.0.0.1${path}`, { method: "POST", headers: pool.headers, body }),
    );
    if (res.status >= 300) throw new Error(`${protocol}: ${res.status} ${await res.text()}`);
    const metrics: Metric[] = [];
    let receivedAt = 0;
    for (const data of published) {
      const decoded = decodeEnvelope(data);
      if (!decoded.ok) throw new Error(decoded.message);
      metrics.push(...decoded.envelope.metrics);
      receivedAt = decoded.envelope.receivedAt;
    }
    batches.push({ metrics, receivedAt });
  }
  return batches;
}

function cpu<T>(work: () => T): [T, number] {
  const start = process.cpuUsage();
  const result = work();
  const used = process.cpuUsage(start);
  return [result, used.user + used.system];
}

const ENCODERS = { 3: encodeSeriesMessages, 4: encodeSeriesMessagesV4 } as const;

const wanted = process.argv.slice(2);
for (const protocol of Object.keys(HANDLERS) as Protocol[]) {
  if (wanted.length > 0 && !wanted.includes(protocol)) continue;
  const batches = await batchesOf(protocol);
  const figures = {
    3: { encode: [0], decode: [0], bytes: [0] },
    4: { encode: [0], decode: [0], bytes: [0] },
  };
  for (const f of Object.values(figures)) for (const list of Object.values(f)) list.length = 0;
  let samples = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const { metrics, receivedAt } = batches[round % batches.length] ?? {
      metrics: [],
      receivedAt: 0,
    };
    samples = metrics.length;
    for (const version of round % 2 === 0 ? ([3, 4] as const) : ([4, 3] as const)) {
      const [messages, encodeUs] = cpu(() =>
        runToEnd(ENCODERS[version](metrics, receivedAt, MAX_BYTES)),
      );
      const [rows, decodeUs] = cpu(() =>
        messages.flatMap(({ data }) => {
          const decoded = decodeEnvelope(data);
          if (!decoded.ok) throw new Error(decoded.message);
          return rowsOfEnvelope(decoded.envelope);
        }),
      );
      if (rows.length !== metrics.length) throw new Error("rows lost");
      figures[version].encode.push(encodeUs);
      figures[version].decode.push(decodeUs);
      figures[version].bytes.push(messages.reduce((sum, m) => sum + m.data.byteLength, 0));
    }
  }
  for (const version of [3, 4] as const) {
    const f = figures[version];
    console.log(
      `${protocol.padEnd(13)} v${version}  encode ${(median(f.encode) / samples).toFixed(2).padStart(5)} µs/sample  decode+rows ${(median(f.decode) / samples).toFixed(2).padStart(5)} µs/sample  ${median(f.bytes).toFixed(0).padStart(7)} bytes per ${samples} samples`,
    );
  }
}
