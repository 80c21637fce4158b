/**
 * `npm run keygen`: a new random API key, and the INGEST_API_KEYS entry that accepts it without
 * the deployment holding the key itself.
 */
import { createHash, randomBytes } from "node:crypto";

const key = randomBytes(32).toString("base64url");
const digest = createHash("sha256").update(key, "utf8").digest("hex");

console.log(`key (give it to the client, as 'Authorization: Bearer <key>'):\n  ${key}`);
console.log(`INGEST_API_KEYS entry (append to the list, comma-separated):\n  sha256:${digest}`);
