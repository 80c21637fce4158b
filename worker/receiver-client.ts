/**
 * One HTTP client per remote-write receiver: keep-alive connections, the receiver's own CA for
 * TLS, and the answer read whole (receivers answer errors with a short text).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";

export interface ReceiverClientOptions {
  /** `http(s)://…`, without user information. */
  readonly url: URL;
  /** The `Authorization` header's value, if any. */
  readonly authorization: string | undefined;
  /** PEM of the CA that signed the receiver's certificate (`https` only). */
  readonly ca: string | undefined;
  /** Headers sent with every request. */
  readonly headers: Readonly<Record<string, string>>;
  /** How long a request may take, answer included. */
  readonly timeoutMs: number;
}

export interface ReceiverAnswer {
  readonly status: number;
  /** The answer's text, cut to `ANSWER_CHARS`. */
  readonly text: string;
  /** What `Retry-After` asks for, in milliseconds. */
  readonly retryAfterMs: number | undefined;
}

export interface ReceiverClient {
  /** Posts `body`; rejects only when no answer came (refused, reset, timed out). */
  post(body: Uint8Array): Promise<ReceiverAnswer>;
  close(): void;
}

/** Most characters of an answer kept: enough for any receiver's reason, bounded for the DLQ. */
const ANSWER_CHARS = 1000;

export function createReceiverClient(options: ReceiverClientOptions): ReceiverClient {
  const secure = options.url.protocol === "https:";
  const agent = secure
    ? new HttpsAgent({
        keepAlive: true,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
      })
    : new HttpAgent({ keepAlive: true });
  const send = secure ? httpsRequest : httpRequest;

  function post(body: Uint8Array): Promise<ReceiverAnswer> {
    return new Promise((resolve, reject) => {
      const req = send(options.url, {
        method: "POST",
        agent,
        headers: {
          ...options.headers,
          "Content-Length": String(body.byteLength),
          ...(options.authorization === undefined ? {} : { Authorization: options.authorization }),
        },
        timeout: options.timeoutMs,
      });
      req.on("timeout", () => {
        req.destroy(new Error(`no answer within ${options.timeoutMs} ms`));
      });
      req.on("error", reject);
      req.on("response", (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let length = 0;
        res.on("data", (chunk: Buffer) => {
          if (length < ANSWER_CHARS * 4) chunks.push(chunk);
          length += chunk.length;
        });
        res.on("error", reject);
        res.on("end", () => {
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString("utf8").trim().slice(0, ANSWER_CHARS),
            retryAfterMs: retryAfterMs(res.headers["retry-after"]),
          });
        });
      });
      req.end(body);
    });
  }

  return {
    post,
    close: () => {
      agent.destroy();
    },
  };
}

/** `Retry-After` in milliseconds: seconds, or an HTTP date; undefined when absent or invalid. */
export function retryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
