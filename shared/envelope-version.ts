/**
 * Version of the message envelope the edge writes for the agent protocols: 4, binary columns
 * (shared/envelope-v4-layout.ts). A worker refuses (dead-letters) any version it does not know,
 * so a change to the envelope's meaning must come with a new number and a worker that reads it.
 * Every earlier version is still read: 1 (no `key`: read as `key: "message"`), 2 (the metrics
 * as one list, each with all its tags) and 3 (the metrics in groups, tags shared by a group's
 * metrics written once), which the JSON API still writes (`JSON_ENVELOPE_VERSION`). Apart from
 * the envelope's schema, so that the processes that only use the compiled validators never load
 * TypeBox.
 */
export const ENVELOPE_VERSION = 4;

/** The version of the JSON envelope: the JSON API's messages, and version 3 agent messages. */
export const JSON_ENVELOPE_VERSION = 3;
