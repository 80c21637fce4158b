/**
 * Samples shaped like Telegraf's cpu input, shared by the storage benchmarks: one series per
 * host and field (`usage_user`, `usage_system`, tags `host` and `cpu`), one point every
 * `stepMs`, values with two decimals, as agent envelopes of one time step each (all series at
 * one time, as one line-protocol request of every host's line) or as that line protocol.
 */
import type { Envelope } from "../shared/envelope.ts";

export const FIELDS = ["usage_user", "usage_system"] as const;

export interface TelegrafShape {
  readonly series: number;
  readonly perSeries: number;
  /** The time of the first sample. */
  readonly startMs: number;
  readonly stepMs: number;
}

/** A deterministic value with two decimals, as a CPU percentage. */
export const valueOf = (series: number, i: number) =>
  Math.round((50 + 40 * Math.sin(series + i / 50) + ((series * 7 + i * 13) % 10)) * 100) / 100;

const hostsOf = (shape: TelegrafShape) => Math.ceil(shape.series / FIELDS.length);

/** The samples as agent envelopes of one time step each, received at `receivedAt`. */
export function* telegrafEnvelopes(
  shape: TelegrafShape,
  receivedAt = Date.now(),
  idPrefix = "s:",
): Generator<Envelope> {
  for (let i = 0; i < shape.perSeries; i++) {
    const metrics = [];
    const timestamp = new Date(shape.startMs + i * shape.stepMs).toISOString();
    for (let h = 0; h < hostsOf(shape); h++) {
      for (const [f, field] of FIELDS.entries()) {
        if (h * FIELDS.length + f >= shape.series) break;
        metrics.push({
          name: `cpu_${field}`,
          value: valueOf(h * FIELDS.length + f, i),
          timestamp,
          tags: { host: `host-${h}`, cpu: "cpu-total" },
          influx: { bucket: "telegraf", measurement: "cpu", field, type: "float" },
        });
      }
    }
    yield { id: `${idPrefix}${i}`, receivedAt, key: "series", metrics } as unknown as Envelope;
  }
}

/** The same samples as InfluxDB line protocol (millisecond timestamps), a time step a string. */
export function* telegrafLineProtocol(shape: TelegrafShape): Generator<string> {
  for (let i = 0; i < shape.perSeries; i++) {
    const lines: string[] = [];
    for (let h = 0; h < hostsOf(shape); h++) {
      const fields = FIELDS.flatMap((field, f) =>
        h * FIELDS.length + f < shape.series
          ? [`${field}=${valueOf(h * FIELDS.length + f, i)}`]
          : [],
      );
      lines.push(
        `cpu,cpu=cpu-total,host=host-${h} ${fields.join(",")} ${shape.startMs + i * shape.stepMs}`,
      );
    }
    yield lines.join("\n");
  }
}
