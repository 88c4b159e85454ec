// The controller's PostgreSQL link over TLS (issue 27). Bun.SQL reads libpq's `sslmode` and
// `sslrootcert` from the URL: `verify-full` checks the server's chain against sslrootcert and its host
// name against the certificate, and never falls back to plaintext (tests/controller/postgres-tls.test.ts).
// In a cluster with TLS on (SKIFF_TLS_CA, the cluster's CA, as skiff-node writes it) a URL that names no
// sslmode gets verify-full against that CA, so the database link is verified like every other one; an
// operator's own database CA goes in sslrootcert, and `sslmode=disable` says plaintext out loud.

export const POSTGRES_SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;

export class DatabaseUrlError extends Error {}

/** `url` with the TLS it gets: unchanged unless it is a postgres:// URL and `clusterCa` or its own sslmode asks for TLS. */
export function postgresUrlWithTls(url: string | undefined, clusterCa: string | undefined): string | undefined {
  if (!url || !/^postgres(ql)?:\/\//.test(url)) return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DatabaseUrlError("SKIFF_DATABASE_URL is not a URL (postgres://user:password@host:port/database)");
  }
  const q = parsed.searchParams;
  const mode = q.get("sslmode");
  if (mode !== null && !(POSTGRES_SSL_MODES as readonly string[]).includes(mode))
    throw new DatabaseUrlError(`SKIFF_DATABASE_URL: sslmode=${mode} is not one of ${POSTGRES_SSL_MODES.join(", ")}`);
  if (!clusterCa) return url;
  if (mode === null) q.set("sslmode", "verify-full");
  const verifying = (q.get("sslmode") ?? "").startsWith("verify-");
  if (verifying && !q.has("sslrootcert")) q.set("sslrootcert", clusterCa);
  return parsed.toString();
}
