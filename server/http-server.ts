import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { toNodeHandler } from "srvx/node";
import { internalErrorResponse } from "../edge/http/http-response.ts";
import type { Handler } from "../edge/http/answer-requests.ts";
import type { Logger } from "../shared/logger.ts";
import { requestIdOf } from "../edge/http/request-id.ts";

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  /** The longest a client may take to send a whole request, body included; then 408. */
  readonly requestTimeoutMs: number;
  readonly handler: Handler;
  readonly logger: Logger;
}

export interface HttpServer {
  /** The address and port it listens on (the port the system chose, for PORT=0). */
  readonly address: AddressInfo;
  /** Requests answered or being answered, and not finished yet. */
  inFlight(): number;
  /**
   * Stops accepting connections and lets the requests in flight finish, closing each connection
   * once it is idle. After `deadlineMs` the connections still open are cut. Resolves true when
   * everything finished in time.
   */
  close(deadlineMs: number): Promise<boolean>;
}

/** How long an idle keep-alive connection stays open: longer than the usual proxy's 60 s. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** How long a client may take to send the request's headers. */
const HEADERS_TIMEOUT_MS = 10_000;

/**
 * A plain Node HTTP server answering with a web-standard handler. srvx converts between Node's
 * request and response and the `Request`/`Response` the handlers take; Node's own server keeps
 * the connections alive and enforces the timeouts.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { handler, logger } = options;
  let inFlight = 0;
  let closing = false;

  const fetchHandler = async (req: Request): Promise<Response> => {
    try {
      const res = await handler(req);
      if (res.statusText !== "") return res;
      // A Response made without a status text would go out as "HTTP/1.1 202 " (legal, but odd).
      return new Response(res.body, {
        status: res.status,
        statusText: STATUS_CODES[res.status] ?? "",
        headers: res.headers,
      });
    } catch (err) {
      // The handlers answer every error themselves; this is the last line of defence.
      const requestId = requestIdOf(req);
      logger.error({ err, requestId }, "unexpected error");
      return internalErrorResponse(requestId);
    }
  };
  const nodeHandler = toNodeHandler(fetchHandler) as (
    req: IncomingMessage,
    res: ServerResponse,
  ) => void | Promise<void>;

  const server = createServer(
    {
      keepAlive: true, // TCP keep-alive probes on every connection; HTTP keep-alive is on anyway
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      // A request whose headers or body stall is answered 408 and its connection closed.
      requestTimeout: options.requestTimeoutMs,
      headersTimeout: Math.min(HEADERS_TIMEOUT_MS, options.requestTimeoutMs),
      // How often Node checks those two timeouts (30 s by default, too coarse for a small one).
      connectionsCheckingInterval: Math.min(1000, Math.ceil(options.requestTimeoutMs / 4)),
    },
    (req, res) => {
      inFlight++;
      res.once("close", () => {
        inFlight--;
      });
      // While stopping, a request on a kept-alive connection is still answered, and that
      // connection is then closed instead of waiting for another one.
      if (closing) res.setHeader("connection", "close");
      void nodeHandler(req, res);
    },
  );

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });

  return {
    address: server.address() as AddressInfo,
    inFlight: () => inFlight,
    close(deadlineMs) {
      closing = true;
      const closed = new Promise<boolean>((resolve) => {
        server.close(() => {
          resolve(true);
        });
      });
      // close() ends the idle connections once; a connection becomes idle again after each
      // answer, so keep ending those until none is left.
      const sweep = setInterval(() => {
        server.closeIdleConnections();
      }, 50);
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => {
          server.closeAllConnections();
          resolve(false);
        }, deadlineMs);
      });
      return Promise.race([closed, deadline]).finally(() => {
        clearInterval(sweep);
        clearTimeout(timer);
      });
    },
  };
}
