// NATS decentralized auth for a joined cluster (issue 27): an operator, a system account and one
// account for skiff, and a user JWT per component carrying its permissions (nats-permissions.ts).
// nats-server verifies a user by the account's signature, so a host joins without any NATS host
// reloading its config. That matters: nats-server 2.9.10 (Debian's) rebuilds its global account on a
// reload of `authorization` users, and a client that connects while it does keeps the old account,
// whose interest counts then drift from the new one's; when such a client leaves, the node withdraws
// the interest of subscribers that remain (tests/cluster checks for such gaps after every scenario).
// Leaving revokes the user: a new account JWT goes to the NATS hosts as a claims update (a full
// resolver), so no NATS host reloads its config for a member joining or leaving either.
// The JWT format is nats-io/jwt v2: header {typ, alg: ed25519-nkey}, claims {jti, iat, iss, sub, name,
// nats}, signed with the issuer's nkey.

import { createHash } from "node:crypto";
import { nkeys } from "nats";
import type { NatsPermissions } from "./nats-permissions.ts";

const { createAccount, createOperator, createUser, fromSeed } = nkeys;
type KeyPair = ReturnType<typeof nkeys.createUser>;
const text = new TextEncoder();
const b64url = (b: Uint8Array | string): string => Buffer.from(typeof b === "string" ? text.encode(b) : b).toString("base64url");
const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32(buf: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of buf) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

export const publicKeyOf = (kp: KeyPair): string => kp.getPublicKey();
export const seedOf = (kp: KeyPair): string => new TextDecoder().decode(kp.getSeed());
export const keyPairFromSeed = (seed: string): KeyPair => fromSeed(text.encode(seed.trim()));

/** A JWT signed by `signer`, whose public key is its issuer. */
export function encodeJwt(signer: KeyPair, claims: { sub: string; name: string; nats: Record<string, unknown> }, now = Date.now()): string {
  const body = { iat: Math.floor(now / 1000), iss: publicKeyOf(signer), ...claims };
  const jti = base32(createHash("sha512-256").update(JSON.stringify(body)).digest());
  const signing = `${b64url(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }))}.${b64url(JSON.stringify({ jti, ...body }))}`;
  return `${signing}.${b64url(signer.sign(text.encode(signing)))}`;
}

/** The claims of a JWT, unverified (nats-server verifies; this reads what skiff issued itself). */
export function decodeJwt(jwt: string): Record<string, any> {
  const [, payload] = jwt.split(".");
  return JSON.parse(Buffer.from(payload ?? "", "base64url").toString("utf8"));
}

/**
 * What a cluster's NATS trust rests on, kept by the registrar only (0600): the seeds, and the operator's
 * and system account's JWTs, made once (a NATS host refuses a new operator JWT short of a restart).
 */
export interface NatsTrust {
  operator: string;
  system: string;
  account: string;
  operatorJwt: string;
  systemJwt: string;
}

const unlimited = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

export function createTrust(now = Date.now()): NatsTrust {
  const op = createOperator();
  const sys = createAccount();
  const seeds = { operator: seedOf(op), system: seedOf(sys), account: seedOf(createAccount()) };
  return {
    ...seeds,
    operatorJwt: encodeJwt(op, { sub: publicKeyOf(op), name: "skiff", nats: { type: "operator", version: 2, system_account: publicKeyOf(sys) } }, now),
    systemJwt: encodeJwt(op, { sub: publicKeyOf(sys), name: "SYS", nats: { type: "account", version: 2, limits: unlimited } }, now),
  };
}

export const accountPublicKey = (trust: NatsTrust): string => publicKeyOf(keyPairFromSeed(trust.account));
export const systemPublicKey = (trust: NatsTrust): string => publicKeyOf(keyPairFromSeed(trust.system));

/**
 * skiff's account JWT: `revoked` maps a user's public key to when (s) it was revoked. A NATS host takes
 * an update only if it is newer, so each one is issued at `issuedAtS`, later than the last.
 */
export function accountJwt(trust: NatsTrust, revoked: Record<string, number>, issuedAtS: number): string {
  const acc = accountPublicKey(trust);
  const nats = { type: "account", version: 2, limits: unlimited, ...(Object.keys(revoked).length ? { revocations: revoked } : {}) };
  return encodeJwt(keyPairFromSeed(trust.operator), { sub: acc, name: "SKIFF", nats }, issuedAtS * 1000);
}

/** What a NATS host's config says of trust: the operator, the system account, both accounts' JWTs. */
export interface NatsOperatorConfig {
  operatorJwt: string;
  systemAccount: string;
  /** account public key → account JWT */
  accounts: Record<string, string>;
}

/** Public parts only, fit for every NATS host. */
export function operatorConfig(trust: NatsTrust, skiffAccountJwt: string): NatsOperatorConfig {
  return {
    operatorJwt: trust.operatorJwt,
    systemAccount: systemPublicKey(trust),
    accounts: { [systemPublicKey(trust)]: trust.systemJwt, [accountPublicKey(trust)]: skiffAccountJwt },
  };
}

/** nats-server's `expires` ("2m", "20m", "90s") as the nanoseconds a user JWT's resp.ttl holds. */
function ttlNanos(expires: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(expires);
  if (!m) throw new Error(`not a duration: ${expires}`);
  const unit = { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }[m[2] as "ms" | "s" | "m" | "h"];
  return Number(m[1]) * unit;
}

export interface UserCredentials {
  /** the user's public key (what a revocation names) */
  publicKey: string;
  /** a NATS .creds file: the JWT and the seed, as nats.js's credsAuthenticator reads it */
  creds: string;
}

/** A user in skiff's account with exactly `perms`; its seed is made here and lives only in the creds. */
export function issueUser(trust: NatsTrust, name: string, perms: NatsPermissions, now = Date.now()): UserCredentials {
  const user = createUser();
  const jwt = encodeJwt(keyPairFromSeed(trust.account), {
    sub: publicKeyOf(user),
    name,
    nats: {
      type: "user",
      version: 2,
      pub: { allow: perms.publish },
      sub: { allow: perms.subscribe },
      resp: { max: perms.responses.max, ttl: ttlNanos(perms.responses.expires) },
      subs: -1,
      data: -1,
      payload: -1,
    },
  }, now);
  return { publicKey: publicKeyOf(user), creds: formatCreds(jwt, seedOf(user)) };
}

/**
 * A user of the system account, for a NATS host's nats-sync: it may only send account updates
 * (`$SYS.REQ.CLAIMS.UPDATE`, which NATS checks are signed by the operator) and read their answers.
 */
export function issueSystemUser(trust: NatsTrust, name: string, now = Date.now()): UserCredentials {
  const user = createUser();
  const inbox = `_INBOX.${name}.>`;
  const jwt = encodeJwt(keyPairFromSeed(trust.system), {
    sub: publicKeyOf(user),
    name,
    nats: { type: "user", version: 2, pub: { allow: [ClaimsUpdateSubject] }, sub: { allow: [inbox] }, subs: -1, data: -1, payload: -1 },
  }, now);
  return { publicKey: publicKeyOf(user), creds: formatCreds(jwt, seedOf(user)) };
}

/** Where an account JWT goes to replace the one every NATS host of the cluster holds (a full resolver). */
export const ClaimsUpdateSubject = "$SYS.REQ.CLAIMS.UPDATE";

export function formatCreds(jwt: string, seed: string): string {
  return (
    `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n` +
    `************************* IMPORTANT *************************\n` +
    `NKEY Seed printed below can be used to sign and prove identity.\nNKEYs are sensitive and should be treated as secrets.\n\n` +
    `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n\n` +
    `*************************************************************\n`
  );
}

/** The JWT inside a .creds file. */
export function credsJwt(creds: string): string {
  const m = /-----BEGIN NATS USER JWT-----\s*\n([^\n]+)\n/.exec(creds);
  if (!m) throw new Error("not a NATS .creds file");
  return m[1]!.trim();
}
