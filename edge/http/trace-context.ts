// W3C Trace Context: version ff and all-zero trace or parent ids are invalid.
const TRACEPARENT = /^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * The message headers that carry a request's trace on: its `traceparent`, when well-formed, so
 * that a trace can follow the metrics from the edge into the worker and the dead-letter stream.
 */
export function traceHeaders(req: Request): Record<string, string> {
  const traceparent = req.headers.get("traceparent");
  return traceparent !== null && TRACEPARENT.test(traceparent) ? { traceparent } : {};
}
