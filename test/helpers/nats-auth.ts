/**
 * Secrets and certificates for a private nats-server with authentication or TLS, all made in a
 * test's own directory: a private CA and a server certificate (openssl), and an operator, its
 * accounts and users signed as `nsc` would sign them (@nats-io/jwt).
 */
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
  type KeyPair,
  type OperatorLimits,
} from "@nats-io/jwt";

const run = promisify(execFile);

/** A private CA and a certificate it signed for 127.0.0.1 and localhost, as PEM files. */
export interface TlsFiles {
  /** The CA's certificate: what a client needs to trust the server. */
  readonly caPem: string;
  readonly certFile: string;
  readonly keyFile: string;
}

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  await run("openssl", args, { cwd: dir });
}

/** Makes a self-signed CA named `name` and a server certificate signed by it, in `dir`. */
export async function makeTlsFiles(dir: string, name = "ca"): Promise<TlsFiles> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(dir, [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-subj",
    `/CN=metrics test ${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await openssl(dir, [
    "req",
    ...ec,
    "-keyout",
    `${name}-server.key`,
    "-out",
    `${name}-server.csr`,
    "-subj",
    "/CN=localhost",
  ]);
  await writeFile(
    join(dir, `${name}-server.ext`),
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "",
    ].join("\n"),
  );
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}-server.csr`,
    "-CA",
    `${name}.pem`,
    "-CAkey",
    `${name}.key`,
    "-set_serial",
    String(Date.now()),
    "-days",
    "2",
    "-extfile",
    `${name}-server.ext`,
    "-out",
    `${name}-server.pem`,
  ]);
  return {
    caPem: await readFile(join(dir, `${name}.pem`), "utf8"),
    certFile: join(dir, `${name}-server.pem`),
    keyFile: join(dir, `${name}-server.key`),
  };
}

/** nats-server arguments for TLS with those files; clients are not asked for certificates. */
export function tlsArgs(files: TlsFiles): string[] {
  return ["--tls", "--tlscert", files.certFile, "--tlskey", files.keyFile];
}

/** Everything unlimited, JetStream included: an account without JetStream limits has none. */
const UNLIMITED: OperatorLimits = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
};

/** A server in operator (decentralised JWT) mode and users' `.creds` texts for it. */
export interface OperatorMode {
  /** The server's configuration file: pass it as `-c <file>`. */
  readonly configFile: string;
  /** A user of the server's account: what NATS_CREDS holds. */
  readonly creds: string;
  /** A user signed by an account the server does not know. */
  readonly strangerCreds: string;
  /** The seeds in both `.creds` texts: a log must never show them. */
  readonly seeds: readonly string[];
}

/**
 * Writes a nats-server configuration in operator mode to `dir`: an operator, a system account
 * and an account with JetStream, preloaded in a memory resolver.
 */
export async function makeOperatorMode(dir: string): Promise<OperatorMode> {
  const operator = createOperator();
  const system = createAccount();
  const account = createAccount();
  const sign = { signer: operator };
  const operatorJwt = await encodeOperator("test-operator", operator, {
    system_account: system.getPublicKey(),
  });
  const systemJwt = await encodeAccount("SYS", system, {}, sign);
  const accountJwt = await encodeAccount("METRICS", account, { limits: UNLIMITED }, sign);

  const user = await userCreds("ingest", account);
  // Another operator's account: the server cannot check its signature on the user.
  const stranger = await userCreds("stranger", createAccount());

  const configFile = join(dir, "operator.conf");
  await writeFile(
    configFile,
    [
      `operator: "${operatorJwt}"`,
      `system_account: "${system.getPublicKey()}"`,
      "resolver: MEMORY",
      "resolver_preload: {",
      `  ${system.getPublicKey()}: "${systemJwt}"`,
      `  ${account.getPublicKey()}: "${accountJwt}"`,
      "}",
      "",
    ].join("\n"),
  );
  return {
    configFile,
    creds: user.creds,
    strangerCreds: stranger.creds,
    seeds: [user.seed, stranger.seed],
  };
}

async function userCreds(name: string, account: KeyPair): Promise<{ creds: string; seed: string }> {
  const user = createUser();
  const jwt = await encodeUser(name, user, account);
  return {
    creds: new TextDecoder().decode(fmtCreds(jwt, user)),
    seed: new TextDecoder().decode(user.getSeed()),
  };
}
