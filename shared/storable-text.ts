/**
 * Text every database can store: no NUL character (PostgreSQL's text and jsonb refuse it) and no
 * lone UTF-16 surrogate (not valid Unicode; jsonb refuses it and UTF-8 cannot encode it).
 * Refused here, at the edge, so that the worker never meets a metric it cannot store. Apart from
 * the metric schema, so that naming the refusal (`toDetails`) does not load TypeBox.
 */
export const STORABLE_TEXT = "^[^\\u0000\\p{Cs}]*$";
