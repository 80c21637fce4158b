/**
 * `npm run setup`: creates or updates the metrics stream, the dead-letter stream and the
 * consumer from the configuration, printing what changed. Running it twice changes nothing.
 */
import { connect, type NatsConnection } from "nats";
import { loadConfigOrExit } from "../shared/config.ts";
import { describeConnectError, natsOptions } from "../shared/nats-connection.ts";
import { ensureStreams } from "../shared/stream-setup.ts";

function fail(message: string): never {
  console.error(`setup: ${message}`);
  process.exit(1);
}

const config = loadConfigOrExit("setup");
const options = natsOptions(config.nats, "metrics-setup");
let nc: NatsConnection;
try {
  nc = await connect(options);
} catch (err) {
  fail(describeConnectError(err, options).message);
}
try {
  for (const change of await ensureStreams(await nc.jetstreamManager(), config)) {
    console.log(change);
  }
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
} finally {
  await nc.close();
}
