import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { METRIC_BOUNDS } from "./limits.ts";
import { ANY_TEXT, STORABLE_TEXT } from "./storable-text.ts";

function storableString(options: { minLength?: number; maxLength: number }) {
  return Type.String({ ...options, pattern: STORABLE_TEXT });
}

/** Name of the ajv format that checks an RFC 3339 date-time the worker can turn into a time. */
export const RFC3339_FORMAT = "rfc3339-date-time";

/**
 * Any property name, as a record's key. TypeBox's own, `^(.*)$`, does not match a name holding a
 * line end (`.` stops there), and a property no pattern matches is not checked at all: a tag
 * `{"a\nb": 5}`, or an extra field's object nesting without bound, would pass.
 */
const ANY_NAME = Type.String({ pattern: ANY_TEXT });

/**
 * Any JSON value nested at most `depth` more levels, with bounded strings, arrays and objects.
 * One named schema per level, each referring to the next, so that the depth bound is part of
 * the schema (ajv refuses a deeply nested value without walking all of it) while ajv compiles
 * each level once instead of inlining copies of it into every branch.
 */
function boundedJsonLevel(depth: number): TSchema {
  const leaves = [
    Type.Null(),
    Type.Boolean(),
    Type.Number(),
    storableString({ maxLength: METRIC_BOUNDS.stringLength }),
  ];
  const description = `must be JSON nested at most ${METRIC_BOUNDS.extraDepth} levels, with strings of at most ${METRIC_BOUNDS.stringLength} characters (no NUL characters or unpaired surrogates), arrays of at most ${METRIC_BOUNDS.arrayItems} items and objects of at most ${METRIC_BOUNDS.objectProperties} properties`;
  if (depth === 0) return Type.Union(leaves, { description });
  const inner = Type.Unsafe<unknown>({ $ref: `#/$defs/json${depth - 1}` });
  return Type.Union(
    [
      ...leaves,
      Type.Array(inner, { maxItems: METRIC_BOUNDS.arrayItems }),
      Type.Record(ANY_NAME, inner, {
        maxProperties: METRIC_BOUNDS.objectProperties,
        propertyNames: { maxLength: METRIC_BOUNDS.stringLength, pattern: STORABLE_TEXT },
      }),
    ],
    { description },
  );
}

const boundedJsonDefs = Object.fromEntries(
  Array.from({ length: METRIC_BOUNDS.extraDepth + 1 }, (_, depth) => [
    `json${depth}`,
    boundedJsonLevel(depth),
  ]),
);

// TypeBox turns a record's key schema into a pattern, dropping its bounds; `propertyNames`
// keeps them.
export const Tags = Type.Record(
  ANY_NAME,
  storableString({ maxLength: METRIC_BOUNDS.tagValueLength }),
  {
    maxProperties: METRIC_BOUNDS.tagCount,
    propertyNames: { minLength: 1, maxLength: METRIC_BOUNDS.tagKeyLength, pattern: STORABLE_TEXT },
  },
);

export const Timestamp = Type.Union(
  [
    Type.String({ format: RFC3339_FORMAT, maxLength: 64 }),
    Type.Integer({ minimum: METRIC_BOUNDS.minTimestampMs, maximum: METRIC_BOUNDS.maxTimestampMs }),
  ],
  {
    description:
      "must be an RFC 3339 date-time string or integer milliseconds since the epoch, from 1970 to 9999",
  },
);

/**
 * One measurement. `value` is the only required field; any other field is kept as sent and
 * stored with the metric, within the bounds above.
 */
export const Metric = Type.Object(
  {
    value: Type.Number(),
    name: Type.Optional(storableString({ minLength: 1, maxLength: METRIC_BOUNDS.nameLength })),
    timestamp: Type.Optional(Timestamp),
    tags: Type.Optional(Tags),
  },
  {
    $id: "Metric",
    $defs: boundedJsonDefs,
    additionalProperties: Type.Unsafe<unknown>({ $ref: `#/$defs/json${METRIC_BOUNDS.extraDepth}` }),
    maxProperties: METRIC_BOUNDS.objectProperties,
    propertyNames: { maxLength: METRIC_BOUNDS.stringLength, pattern: STORABLE_TEXT },
  },
);
export type Metric = Static<typeof Metric>;

/**
 * The JSON request body: `{"data": Metric}` or `{"data": [Metric, ...]}`. Only the shape is
 * checked here; each metric is validated on its own so that errors can name its index.
 */
export const JsonBody = Type.Object(
  { data: Type.Union([Type.Object({}), Type.Array(Type.Unknown())]) },
  { additionalProperties: false },
);
export type JsonBody = Static<typeof JsonBody>;
