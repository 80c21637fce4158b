/**
 * Version of the message envelope the edge writes. A worker refuses (dead-letters) any version
 * it does not know, so a change to the envelope's meaning must come with a new number and a
 * worker that reads it. Every earlier version is still read: 1 (no `key`: read as
 * `key: "message"`), 2 (the metrics as one list, each with all its tags) and 3 (the metrics in
 * groups, tags shared by a group's metrics written once). Apart from the envelope's schema, so
 * that the processes that only use the compiled validators never load TypeBox.
 */
export const ENVELOPE_VERSION = 3;
