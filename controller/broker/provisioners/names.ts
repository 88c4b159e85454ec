// Names of databases, roles and users derived from platform GUIDs: deterministic (a retried provision
// finds what the first attempt made), short enough for every server (MySQL users: 32 chars), and made of
// lower-case letters and digits only, so they need no quoting rules and are never wildcards (MySQL
// GRANT treats `_` in database names as one).

import { createHash } from "node:crypto";
import type { Credentials } from "../types.ts";

export function resourceName(prefix: string, id: string): string {
  if (!/^[a-z]{1,8}$/.test(prefix)) throw new Error(`bad name prefix ${prefix}`);
  return prefix + createHash("sha256").update(id).digest("hex").slice(0, 24);
}

/** A password of URL-safe characters (base64url), so it can sit in a URI without escaping. */
export function newPassword(bytes = 24): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("base64url");
}

/** The hostname/port advertised in credentials: the admin URL's, unless the operator says otherwise. */
export function advertised(adminUrl: string, override?: { host?: string; port?: number }, defaultPort = 0) {
  const u = new URL(adminUrl);
  return { hostname: override?.host ?? u.hostname, port: override?.port ?? (u.port ? Number(u.port) : defaultPort) };
}

export interface CredentialParts {
  hostname: string;
  port: number;
  name: string;
  username: string;
  password: string;
  [extra: string]: unknown;
}

export function credentials(scheme: string, c: CredentialParts, path: string): Credentials {
  const auth = `${encodeURIComponent(c.username)}:${encodeURIComponent(c.password)}`;
  return { ...c, uri: `${scheme}://${auth}@${c.hostname}:${c.port}${path}` };
}
