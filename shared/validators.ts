/**
 * The validators of untrusted data, compiled from the TypeBox schemas at build time (ajv's
 * standalone code, `npm run generate:validators`; the options are in
 * scripts/generate-validators.ts): importing them costs no compilation. The worker re-validates
 * each envelope with the same functions.
 */
export {
  validateEnvelopeV2,
  validateEnvelopeV2Frame,
  validateEnvelopeV3,
  validateEnvelopeV4,
  validateJsonBody,
  validateMetric,
} from "./gen/compiled-validators.js";
