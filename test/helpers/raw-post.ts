import { request } from "node:http";

export interface RawAnswer {
  readonly status: number;
  readonly body: string;
}

/**
 * A POST with node:http to 127.0.0.1:`port`, which sends the `Host` (and `Origin`) headers it
 * is given as they are; fetch sets its own `Host`.
 */
export function postRaw(
  port: number,
  path: string,
  headers: Record<string, string>,
  body = "",
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "POST", path, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, body: text });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}
