import { readFile } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** The site's folder: what Netlify publishes (netlify.toml `publish`), served here as it is. */
export const PUBLIC_DIR = fileURLToPath(new URL("../public/", import.meta.url));

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  "": "text/plain; charset=utf-8",
};

/**
 * The same security headers netlify.toml gives the published page: its scripts and styles
 * only from this origin (uPlot sets inline styles), and never inside another site's frame.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * The live page and its files for `npm run serve`, as netlify dev and Netlify serve public/:
 * GET and HEAD of a file under the folder (`/` is index.html); undefined for anything else,
 * which the router answers 404.
 */
export function createStaticFiles(
  root = PUBLIC_DIR,
): (req: Request) => Promise<Response | undefined> {
  return async (req) => {
    if (req.method !== "GET" && req.method !== "HEAD") return undefined;
    let path = decodeURIComponent(new URL(req.url).pathname);
    if (path.endsWith("/")) path += "index.html";
    // The URL parser has removed dot segments; normalize() catches an encoded one.
    const file = normalize(join(root, path));
    if (!file.startsWith(root) || file.split(sep).includes("..")) return undefined;
    const type = TYPES[extname(file)];
    if (type === undefined) return undefined;
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      return undefined;
    }
    return new Response(req.method === "HEAD" ? null : new Uint8Array(body), {
      status: 200,
      headers: {
        "content-type": type,
        "content-length": String(body.byteLength),
        "cache-control": "no-cache",
        ...PAGE_HEADERS,
      },
    });
  };
}
