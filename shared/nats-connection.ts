import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from "nats";
import type { Config } from "./config.ts";

/** Connection options from the configuration: servers, authentication and timeouts. */
export function natsOptions(nats: Config["nats"], name: string): ConnectionOptions {
  const options: ConnectionOptions = {
    servers: [...nats.servers],
    name,
    timeout: nats.connectTimeoutMs,
    // Once connected, keep reconnecting for as long as the process lives; a publish made
    // meanwhile fails after its own timeout rather than waiting forever.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
  };
  if (nats.creds !== undefined) {
    options.authenticator = credsAuthenticator(new TextEncoder().encode(nats.creds));
  }
  if (nats.token !== undefined) options.token = nats.token;
  if (nats.user !== undefined) options.user = nats.user;
  if (nats.password !== undefined) options.pass = nats.password;
  return options;
}

/** Hands out one shared connection, making it on first use and again after it has closed. */
export interface ConnectionProvider {
  get(): Promise<NatsConnection>;
  close(): Promise<void>;
}

export function createConnectionProvider(options: ConnectionOptions): ConnectionProvider {
  let current: Promise<NatsConnection> | undefined;
  return {
    async get() {
      if (current) {
        const nc = await current.catch(() => undefined);
        if (nc && !nc.isClosed()) return nc;
      }
      current = connect(options);
      // A failed attempt is not cached: the next request tries again.
      current.catch(() => {
        current = undefined;
      });
      return current;
    },
    async close() {
      const nc = await current?.catch(() => undefined);
      current = undefined;
      if (nc && !nc.isClosed()) await nc.drain();
    },
  };
}
