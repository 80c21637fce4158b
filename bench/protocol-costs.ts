/**
 * What one 2,000-sample request of each protocol costs the edge's handler, in-process and one
 * at a time, with a publisher that keeps nothing: decoding, converting, checking, encoding the
 * envelope — no HTTP, no broker. Medians of CPU time, so a busy machine moves them less than
 * the load figures. Run: `node bench/protocol-costs.ts [protocol…]`; prints µs per request and
 * per sample, and the bytes of the messages a request is published as (median). With
 * `--cpu-prof`, the profile covers these requests alone.
 */
import { inProcessHandlers } from "./in-process-handlers.ts";
import { bodyPool, type Protocol } from "./protocol-bodies.ts";
import { median } from "./support.ts";

const REQUESTS = 300;
/** Bytes published by the request being measured. */
let published = 0;
const HANDLERS = inProcessHandlers((data) => (published += data.byteLength));

const wanted = process.argv.slice(2);
for (const protocol of Object.keys(HANDLERS) as Protocol[]) {
  if (wanted.length > 0 && !wanted.includes(protocol)) continue;
  const [handler, path] = HANDLERS[protocol];
  const pool = bodyPool(protocol, REQUESTS);
  const send = async (i: number) => {
    const req = new Request(`http://127.0.0.1${path}`, {
      method: "POST",
      headers: pool.headers,
      body: pool.bodies[i % REQUESTS] ?? null,
    });
    const res = await handler(req);
    if (res.status >= 300) throw new Error(`${protocol}: ${res.status} ${await res.text()}`);
  };
  for (let i = 0; i < 30; i++) await send(i);
  const times: number[] = [];
  const bytes: number[] = [];
  const faultsBefore = process.resourceUsage().minorPageFault;
  for (let i = 0; i < REQUESTS; i++) {
    published = 0;
    const start = process.cpuUsage();
    await send(i);
    const used = process.cpuUsage(start);
    times.push(used.user + used.system);
    bytes.push(published);
  }
  const faults = (process.resourceUsage().minorPageFault - faultsBefore) / REQUESTS;
  const us = median(times);
  console.log(
    `${protocol.padEnd(13)} ${us.toFixed(0).padStart(7)} µs/request  ${(us / pool.samples).toFixed(2).padStart(6)} µs/sample  ${median(bytes).toFixed(0).padStart(7)} bytes published  ${faults.toFixed(0).padStart(4)} page faults/request`,
  );
}
