/**
 * `npm run keygen`: a new random API key, and the INGEST_API_KEYS entry that accepts it without
 * the deployment holding the key itself; also that entry scoped to the JSON API alone, the form
 * for a key a web page holds.
 */
import { createHash, randomBytes } from "node:crypto";
import { KEY_SCOPES } from "../shared/api-keys.ts";

const key = randomBytes(32).toString("base64url");
const digest = createHash("sha256").update(key, "utf8").digest("hex");

console.log(`key (give it to the client, as 'Authorization: Bearer <key>'):\n  ${key}`);
console.log(`INGEST_API_KEYS entry (append to the list, comma-separated):\n  sha256:${digest}`);
console.log(
  `or the same entry opening only some endpoints (scopes: ${KEY_SCOPES.join(", ")}), e.g. the JSON API alone, for a web page:\n  sha256:${digest}@json`,
);
