/**
 * Version of the message envelope the edge writes for the agent protocols: 4, JSON with each
 * series once and the points as columns (`EnvelopeV4`, shared/envelope-schema.ts). A worker refuses (dead-letters) any version it does not know,
 * so a change to the envelope's meaning must come with a new number and a worker that reads it.
 * Every earlier version is still read: 1 (no `key`: read as `key: "message"`), 2 (the metrics
 * as one list, each with all its tags), which the JSON API writes (`AS_SENT_ENVELOPE_VERSION`),
 * and 3 (the metrics in groups, tags shared by a group's metrics written once). Apart from
 * the envelope's schema, so that the processes that only use the compiled validators never load
 * TypeBox.
 */
export const ENVELOPE_VERSION = 4;

/** The version of the envelope in groups (version 3 agent messages, and older JSON API ones). */
export const GROUPS_ENVELOPE_VERSION = 3;

/** The version of the JSON API's messages: its metrics as one list, as the request held them. */
export const AS_SENT_ENVELOPE_VERSION = 2;
