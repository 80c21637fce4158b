/**
 * Version of the message envelope. A worker refuses (dead-letters) any version it does not
 * know, so a change to the envelope's meaning must come with a new number and a worker that
 * reads it. Version 1 (no `key`) is still read, as `key: "message"`. Apart from the envelope's
 * schema, so that the processes that only use the compiled validators never load TypeBox.
 */
export const ENVELOPE_VERSION = 2;
