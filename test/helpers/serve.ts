import { startChild, type Child } from "./processes.ts";
import { waitFor } from "./wait.ts";

/** The self-hosted ingest server as its own process, and where it listens. */
export interface ServeProcess {
  readonly child: Child;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
}

/**
 * Starts `node server/main.ts` exactly as `npm run serve` does, on a port the system picks
 * (PORT=0), and waits for its "listening" log line. Throws, with the output, if it exits first.
 */
export async function startServe(env: Readonly<Record<string, string>>): Promise<ServeProcess> {
  const child = startChild(process.execPath, ["server/main.ts"], {
    LOG_LEVEL: "info",
    HOST: "127.0.0.1",
    PORT: "0",
    ...env,
  });
  const port = await waitFor("the server's listening line", () => {
    if (child.process.exitCode !== null) {
      throw new Error(`the server exited at start:\n${child.output()}`);
    }
    return listeningPort(child);
  }).catch(async (err: unknown) => {
    await child.stop("SIGKILL");
    throw new Error(`${String(err)}\n--- server output ---\n${child.output()}`, { cause: err });
  });
  return { child, port, base: `http://127.0.0.1:${port}` };
}

function listeningPort(child: Child): number | undefined {
  for (const line of child.output().split("\n")) {
    if (!line.includes('"listening"')) continue;
    const { port } = JSON.parse(line) as { port?: number };
    if (port !== undefined) return port;
  }
  return undefined;
}
