import { createLogger } from "../../shared/logger.ts";

/** The logger of a test that does not read the log. */
export const silentLogger = createLogger("test", "silent");
