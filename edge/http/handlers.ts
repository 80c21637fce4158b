/**
 * Every endpoint's handler over one context, for the self-hosted server (and the benchmarks):
 * each is made by the same `…HandlerOf(context)` its Netlify function calls.
 */
import type { Handler } from "./answer-requests.ts";
import type { Config } from "../../shared/config.ts";
import { influxWriteHandlerOf } from "../influx/influx-write-handler.ts";
import { ingestHandlerOf } from "../json/ingest-handler.ts";
import { otlpMetricsHandlerOf } from "../otlp/otlp-metrics-handler.ts";
import { remoteWriteHandlerOf } from "../remote-write/remote-write-handler.ts";
import { createServiceContext, type ContextOptions } from "./service-context.ts";
import { healthHandlerOf } from "./health-handler.ts";

export interface Handlers {
  readonly ingest: Handler;
  readonly health: Handler;
  readonly influxWrite: Handler;
  readonly otlpMetrics: Handler;
  readonly remoteWrite: Handler;
}

/** The handlers, and what closes the NATS connection they share (drained, so nothing is lost). */
export interface HandlerSet extends Handlers {
  close(): Promise<void>;
}

export function createHandlers(config: Config, options: ContextOptions): HandlerSet {
  const context = createServiceContext(config, options);
  return {
    ingest: ingestHandlerOf(context),
    health: healthHandlerOf(context),
    influxWrite: influxWriteHandlerOf(context),
    otlpMetrics: otlpMetricsHandlerOf(context),
    remoteWrite: remoteWriteHandlerOf(context),
    close: () => context.close(),
  };
}
