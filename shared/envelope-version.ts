/**
 * Version of the message envelope the edge writes for the agent protocols: 4, JSON with each
 * series once and the points as columns (`EnvelopeV4`, shared/envelope-schema.ts). A worker refuses (dead-letters) any version it does not know,
 * so a change to the envelope's meaning must come with a new number and a worker that reads it.
 * Every earlier version is still read: 1 (no `key`: read as `key: "message"`), 2 (the metrics
 * as one list, each with all its tags) and 3 (the metrics in groups, tags shared by a group's
 * metrics written once), which the JSON API still writes (`GROUPS_ENVELOPE_VERSION`). Apart from
 * the envelope's schema, so that the processes that only use the compiled validators never load
 * TypeBox.
 */
export const ENVELOPE_VERSION = 4;

/** The version of the envelope in groups: the JSON API's messages, and version 3 agent messages. */
export const GROUPS_ENVELOPE_VERSION = 3;
