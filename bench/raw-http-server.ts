/**
 * The baseline of the HTTP measurements: a bare node:http server that reads the body, parses
 * it as JSON, or each line of it for `application/x-ndjson` (nothing more: no schema), and publishes the bytes as they came to JetStream,
 * answering 202 once the PubAck arrived. Run: `NATS_URL=… PORT=… node bench/raw-http-server.ts`.
 */
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { connect } from "nats";

const nc = await connect({ servers: process.env["NATS_URL"] ?? "", noAsyncTraces: true });
const js = nc.jetstream();

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const answer = (status: number, json: unknown) => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(json));
    };
    try {
      const text = body.toString("utf8");
      if (req.headers["content-type"] === "application/x-ndjson") {
        for (const line of text.split("\n")) if (line !== "") JSON.parse(line);
      } else {
        JSON.parse(text);
      }
    } catch {
      answer(400, { status: "error" });
      return;
    }
    const key = req.headers["idempotency-key"];
    const msgID = typeof key === "string" ? key : randomUUID();
    js.publish("metrics.json", body, { msgID }).then(
      (ack) => {
        answer(202, { status: "ok", id: msgID, seq: ack.seq });
      },
      () => {
        answer(503, { status: "error" });
      },
    );
  });
});
server.listen(Number(process.env["PORT"] ?? 0), "127.0.0.1", () => {
  console.log(JSON.stringify({ msg: "listening" }));
});
process.on("SIGTERM", () => {
  server.close();
  void nc.drain().then(() => process.exit(0));
});
