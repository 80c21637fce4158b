import { readFile } from "node:fs/promises";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  configAjv,
  generatedValidators,
  validationAjv,
} from "../../scripts/generate-validators.ts";
import { configVariables, validateConfigEnv } from "../../shared/gen/compiled-config-validator.js";
import { ConfigEnv } from "../../shared/config-schema.ts";
import { EnvelopeV2, EnvelopeV3 } from "../../shared/envelope-schema.ts";
import { JsonBody, Metric } from "../../shared/metric-schema.ts";
import {
  validateEnvelopeV2,
  validateEnvelopeV3,
  validateJsonBody,
  validateMetric,
} from "../../shared/validators.ts";

/**
 * The validators are ajv's standalone code, generated from the TypeBox schemas and committed.
 * These tests keep the schemas the one definition: the committed code is what the schemas
 * generate today, and it judges every value exactly as ajv compiling the schemas would, with
 * the same error objects (and, for the configuration, the same coerced values and defaults).
 */
describe("shared/compiled-*.js", () => {
  it("is what `npm run generate:validators` writes from the schemas today", async () => {
    for (const [file, text] of await generatedValidators()) {
      expect(
        await readFile(file, "utf8"),
        `${file} is out of date: run npm run generate:validators`,
      ).toBe(text);
    }
  }, 30_000);
});

/**
 * The verdict, errors and data after validating a copy of `data`, as plain data (a TypeBox
 * schema in an error also carries symbol keys).
 */
function judge(validate: (data: unknown) => boolean, errors: () => unknown, data: unknown) {
  const copy = structuredClone(data);
  const valid = validate(copy);
  const plain = (value: unknown) => JSON.parse(JSON.stringify(value ?? null)) as unknown;
  return { valid, errors: valid ? null : plain(errors()), data: plain(copy) };
}

describe("the compiled validators against ajv compiling the schemas", () => {
  const ajv = validationAjv();
  // The metric schema first: the envelope schema refers to it by its $id.
  const pairs = [
    { name: "metric", compiled: validateMetric, runtime: ajv.compile(Metric) },
    { name: "JSON body", compiled: validateJsonBody, runtime: ajv.compile(JsonBody) },
    { name: "envelope v2", compiled: validateEnvelopeV2, runtime: ajv.compile(EnvelopeV2) },
    { name: "envelope v3", compiled: validateEnvelopeV3, runtime: ajv.compile(EnvelopeV3) },
  ];

  const text = fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.constantFrom("", "\u0000", "a\ud800", "2024-02-30T00:00:00Z", "2024-05-01T12:00:00.5Z"),
    fc.string({ minLength: 250, maxLength: 300 }),
  );
  const metricLike = fc.record(
    {
      value: fc.oneof(fc.double(), fc.string({ maxLength: 3 }), fc.constant(null)),
      name: text,
      timestamp: fc.oneof(text, fc.integer(), fc.double(), fc.constant(-1)),
      tags: fc.oneof(fc.dictionary(text, fc.oneof(text, fc.integer())), fc.jsonValue()),
      extra: fc.jsonValue({ maxDepth: 10 }),
    },
    { requiredKeys: [] },
  );
  const candidate = fc.oneof(
    metricLike,
    fc.jsonValue({ maxDepth: 4 }),
    fc.record({ data: fc.oneof(metricLike, fc.array(metricLike, { maxLength: 3 })) }),
    fc.record(
      {
        v: fc.constantFrom(1, 2, 3),
        id: text,
        receivedAt: fc.oneof(fc.integer(), fc.double()),
        key: fc.constantFrom("message", "series", "other"),
        metrics: fc.array(metricLike, { maxLength: 3 }),
        groups: fc.array(
          fc.record(
            {
              tags: fc.oneof(fc.dictionary(text, fc.oneof(text, fc.integer())), fc.jsonValue()),
              metrics: fc.array(metricLike, { maxLength: 3 }),
              extra: fc.jsonValue({ maxDepth: 2 }),
            },
            { requiredKeys: [] },
          ),
          { maxLength: 3 },
        ),
        extra: fc.jsonValue({ maxDepth: 2 }),
      },
      { requiredKeys: [] },
    ),
  );

  for (const { name, compiled, runtime } of pairs) {
    it(`judges every value as ajv would: ${name}`, () => {
      fc.assert(
        fc.property(candidate, (data) => {
          expect(judge(compiled, () => compiled.errors, data)).toEqual(
            judge(runtime, () => runtime.errors, data),
          );
        }),
        { numRuns: 2000 },
      );
    });
  }
});

describe("the compiled configuration validator against ajv compiling its schema", () => {
  const runtime = configAjv().compile(ConfigEnv);

  it("lists the schema's variables", () => {
    expect(configVariables).toEqual(Object.keys(ConfigEnv.properties));
  });

  it("coerces, fills in defaults and refuses as ajv would", () => {
    const value = fc.oneof(
      fc.string({ maxLength: 6 }),
      fc.integer().map(String),
      fc.constantFrom("", "-1", "1.5", "1e3", "true", "none", "required", "verify-full", "a,b"),
    );
    const env = fc.dictionary(fc.constantFrom(...configVariables), value);
    fc.assert(
      fc.property(env, (data) => {
        expect(judge(validateConfigEnv, () => validateConfigEnv.errors, data)).toEqual(
          judge(runtime, () => runtime.errors, data),
        );
      }),
      { numRuns: 2000 },
    );
  });
});
