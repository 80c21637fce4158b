import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { decodeWriteRequest } from "../../edge/remote-write/remote-write.ts";
import type { WriteRequest } from "../../shared/gen/proto/prometheus/remote_pb.js";

/** What the proxy does with one remote-write request. */
export type ProxyAction =
  | "forward"
  /** Forwards it, then answers 500 whatever the receiver said: stored, yet told to retry. */
  | "forward-then-fail"
  | { readonly status: number; readonly text: string };

/**
 * An HTTP proxy in front of a remote-write receiver that a test can make answer as it likes,
 * request by request (`decide` sees each request decoded). When the receiver cannot be reached,
 * the proxy closes the connection without answering, as the receiver being down would.
 */
export interface WriteProxy {
  readonly port: number;
  readonly url: string;
  decide: (request: WriteRequest) => ProxyAction;
  /** The requests seen, decoded, and what was done with each. */
  readonly seen: { request: WriteRequest; action: ProxyAction }[];
  close(): Promise<void>;
}

export async function startWriteProxy(target: string): Promise<WriteProxy> {
  const proxy: WriteProxy = {
    port: 0,
    url: "",
    decide: () => "forward",
    seen: [],
    close: () =>
      new Promise((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await bodyOf(req);
      const request = decodeWriteRequest(body, 64 * 1024 * 1024);
      const action = proxy.decide(request);
      proxy.seen.push({ request, action });
      if (typeof action === "object") {
        res.writeHead(action.status, { "Content-Type": "text/plain" }).end(action.text);
        return;
      }
      try {
        const upstream = await fetch(target, {
          method: "POST",
          headers: Object.fromEntries(
            ["content-type", "content-encoding", "x-prometheus-remote-write-version"].flatMap(
              (name) => {
                const value = req.headers[name];
                return typeof value === "string" ? [[name, value]] : [];
              },
            ),
          ),
          body,
        });
        const text = await upstream.text();
        if (action === "forward-then-fail") {
          res.writeHead(500, { "Content-Type": "text/plain" }).end("failing on purpose");
        } else {
          res.writeHead(upstream.status, { "Content-Type": "text/plain" }).end(text);
        }
      } catch {
        req.socket.destroy();
      }
    })();
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  Object.assign(proxy, { port, url: `http://127.0.0.1:${port}/api/v1/write` });
  return proxy;
}

async function bodyOf(req: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Whether a request holds a series with the label `name="value"`. */
export function holdsLabel(request: WriteRequest, name: string, value: string): boolean {
  return request.timeseries.some((s) =>
    s.labels.some((label) => label.name === name && label.value === value),
  );
}

/** Samples in a request. */
export function samplesIn(request: WriteRequest): number {
  return request.timeseries.reduce((n, s) => n + s.samples.length, 0);
}
