/**
 * `npm run setup`: creates or updates the metrics stream, the dead-letter stream and the
 * consumer from the configuration, printing what changed. Running it twice changes nothing.
 */
import { connect } from "nats";
import { ConfigError, loadConfig } from "../shared/config.ts";
import { natsOptions } from "../shared/nats-connection.ts";
import { ensureStreams } from "../shared/stream-setup.ts";

try {
  const config = loadConfig(process.env);
  const nc = await connect(natsOptions(config.nats, "metrics-setup"));
  try {
    for (const change of await ensureStreams(await nc.jetstreamManager(), config)) {
      console.log(change);
    }
  } finally {
    await nc.close();
  }
} catch (err) {
  console.error(
    `setup: ${err instanceof ConfigError || err instanceof Error ? err.message : String(err)}`,
  );
  process.exit(1);
}
