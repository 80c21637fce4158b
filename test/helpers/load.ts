import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Handler } from "../../edge/http/answer-requests.ts";
import { post } from "./requests.ts";

/**
 * Sends `requests` JSON requests of `perRequest` metrics each through a real ingest handler,
 * `concurrency` at a time, and returns their message ids. Each request has an Idempotency-Key
 * and is retried on a 503, as the API asks clients to: the retry cannot store anything twice.
 * Every metric is named `load.<request>`, its value its index.
 */
export async function sendLoad(
  handler: Handler,
  {
    requests,
    perRequest,
    concurrency = 8,
  }: { requests: number; perRequest: number; concurrency?: number },
): Promise<string[]> {
  const batch = randomUUID();
  const accepted: string[] = [];
  let next = 0;
  async function send(r: number): Promise<string> {
    const data = Array.from({ length: perRequest }, (_, i) => ({ name: `load.${r}`, value: i }));
    const body = JSON.stringify({ data });
    const headers = { "content-type": "application/json", "idempotency-key": `${batch}-${r}` };
    for (let attempt = 1; ; attempt++) {
      const res = await handler(post(body, headers));
      if (res.status === 202) return ((await res.json()) as { id: string }).id;
      if (res.status !== 503 || attempt === 20) {
        throw new Error(`request ${r} answered ${res.status}: ${await res.text()}`);
      }
      await sleep(250);
    }
  }
  async function lane() {
    while (next < requests) accepted.push(await send(next++));
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  return accepted;
}
