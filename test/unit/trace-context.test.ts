import { describe, expect, it } from "vitest";
import { createInfluxWriteHandler } from "../../edge/influx/influx-write-handler.ts";
import { createOtlpMetricsHandler } from "../../edge/otlp/otlp-metrics-handler.ts";
import { traceHeaders } from "../../edge/http/trace-context.ts";
import { agentOptions } from "../helpers/agent.ts";

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

const withTrace = (traceparent: string) =>
  new Request("http://localhost/", { headers: { traceparent } });

describe("traceHeaders", () => {
  it("carries a well-formed traceparent on", () => {
    expect(traceHeaders(withTrace(TRACEPARENT))).toEqual({ traceparent: TRACEPARENT });
  });

  it.each([
    ["version ff", TRACEPARENT.replace(/^00/, "ff")],
    ["an all-zero trace id", `00-${"0".repeat(32)}-00f067aa0ba902b7-01`],
    ["an all-zero parent id", `00-4bf92f3577b34da6a3ce929d0e0e4736-${"0".repeat(16)}-01`],
    ["upper-case hex", TRACEPARENT.toUpperCase()],
    ["a truncated id", TRACEPARENT.slice(0, -3)],
  ])("drops one with %s", (_, traceparent) => {
    expect(traceHeaders(withTrace(traceparent))).toEqual({});
  });

  it("adds nothing without one", () => {
    expect(traceHeaders(new Request("http://localhost/"))).toEqual({});
  });
});

describe("the agent endpoints", () => {
  const options = () => agentOptions("metrics.agent", 1_800_000_000_000);

  it("carry the request's traceparent into the message (InfluxDB)", async () => {
    const { published, options: o } = options();
    const res = await createInfluxWriteHandler(o)(
      new Request("http://localhost/api/v2/write?bucket=b", {
        method: "POST",
        headers: { traceparent: TRACEPARENT },
        body: "cpu,host=a usage=1 1800000000000000000",
      }),
    );
    expect(res.status).toBe(204);
    expect(published[0]?.headers).toEqual({ traceparent: TRACEPARENT });
  });

  it("carry the request's traceparent into the message (OTLP)", async () => {
    const { published, options: o } = options();
    const body = {
      resourceMetrics: [
        {
          scopeMetrics: [
            {
              metrics: [
                {
                  name: "cpu",
                  gauge: { dataPoints: [{ timeUnixNano: "1800000000000000000", asDouble: 1 }] },
                },
              ],
            },
          ],
        },
      ],
    };
    const res = await createOtlpMetricsHandler(o)(
      new Request("http://localhost/v1/metrics", {
        method: "POST",
        headers: { traceparent: TRACEPARENT, "content-type": "application/json" },
        body: JSON.stringify(body),
      }),
    );
    expect(res.status).toBe(200);
    expect(published[0]?.headers).toEqual({ traceparent: TRACEPARENT });
  });
});
