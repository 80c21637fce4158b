import type { Handler } from "../../shared/ingest-handler.ts";
import { post } from "./ingest.ts";

/**
 * Sends `requests` JSON requests of `perRequest` metrics each through a real ingest handler,
 * `concurrency` at a time, and returns the message ids of those answered 202. Every metric is
 * named so that its row can be traced back: `load.<request>`, value = its index.
 */
export async function sendLoad(
  handler: Handler,
  {
    requests,
    perRequest,
    concurrency = 8,
  }: { requests: number; perRequest: number; concurrency?: number },
): Promise<string[]> {
  const accepted: string[] = [];
  let next = 0;
  async function lane() {
    while (next < requests) {
      const r = next++;
      const data = Array.from({ length: perRequest }, (_, i) => ({ name: `load.${r}`, value: i }));
      const res = await handler(post(JSON.stringify({ data })));
      if (res.status !== 202)
        throw new Error(`request ${r} answered ${res.status}: ${await res.text()}`);
      accepted.push(((await res.json()) as { id: string }).id);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  return accepted;
}
