import { createServer, connect, type Server, type Socket } from "node:net";

/**
 * A TCP proxy on loopback that a test can cut and restore, to make a server unreachable for a
 * while without stopping it: cut() drops every connection and stops listening (so new ones are
 * refused), restore() listens again on the same port. setDelay() makes it a slow link: every
 * chunk, each way, waits `ms` ± `jitterMs` (uniformly) before it is passed on, in order. This
 * kernel has no `netem`, so delay is done here, in userspace.
 */
export interface TcpProxy {
  readonly port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  /** Delays every chunk from now on by `ms` ± `jitterMs`; `setDelay(0)` passes them at once. */
  setDelay(ms: number, jitterMs?: number): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  let delay = { ms: 0, jitterMs: 0 };

  /** Passes what `from` sends to `to`, each chunk after the delay, never overtaking another. */
  function forward(from: Socket, to: Socket): void {
    let lastDue = 0;
    from.on("data", (chunk: Buffer) => {
      const now = Date.now();
      if (delay.ms === 0 && lastDue <= now) {
        to.write(chunk);
        return;
      }
      const wait = delay.ms + (Math.random() * 2 - 1) * delay.jitterMs;
      const due = Math.max(lastDue, now + wait);
      lastDue = due;
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, due - now);
    });
    from.on("end", () => {
      setTimeout(() => to.end(), Math.max(0, lastDue - Date.now()));
    });
  }

  function listen(): Promise<void> {
    const s = createServer((client) => {
      const upstream = connect(targetPort, targetHost);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
        socket.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      forward(client, upstream);
      forward(upstream, client);
    });
    server = s;
    return new Promise((resolve, reject) => {
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        const address = s.address();
        if (typeof address === "object" && address !== null) port = address.port;
        resolve();
      });
    });
  }

  async function cut(): Promise<void> {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (s)
      await new Promise<void>((resolve) =>
        s.close(() => {
          resolve();
        }),
      );
  }

  await listen();
  return {
    get port() {
      return port;
    },
    cut,
    restore: listen,
    setDelay(ms, jitterMs = 0) {
      delay = { ms, jitterMs };
    },
    close: cut,
  };
}
