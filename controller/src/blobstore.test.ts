// Signed blob URLs: good for the stated lifetime and no longer, whatever expiry the URL claims (issue 24:
// an instance that read the signing secret forged a URL expiring in 2100).

import { describe, expect, test } from "bun:test";
import { SIGNED_URL_TTL_MS, UrlSigner } from "./blobstore.ts";

const signer = new UrlSigner("s3cret", "http://controller");
const parts = (url: string) => {
  const u = new URL(url);
  return { path: u.pathname, expires: u.searchParams.get("expires"), signature: u.searchParams.get("signature") };
};

describe("UrlSigner", () => {
  test("a URL it signed verifies for its method and path, until it expires", () => {
    const now = 1_800_000_000_000;
    const { path, expires, signature } = parts(signer.sign("GET", "/internal/v1/packages/abc", now));
    expect(Number(expires)).toBe(now + SIGNED_URL_TTL_MS);
    expect(signer.verify("GET", path, expires, signature, now)).toBe(true);
    expect(signer.verify("GET", path, expires, signature, now + SIGNED_URL_TTL_MS)).toBe(true);
    expect(signer.verify("GET", path, expires, signature, now + SIGNED_URL_TTL_MS + 1)).toBe(false);
    expect(signer.verify("PUT", path, expires, signature, now)).toBe(false);
    expect(signer.verify("GET", "/internal/v1/packages/abd", expires, signature, now)).toBe(false);
  });

  test("a correctly signed URL whose expiry lies beyond the lifetime is refused", () => {
    const now = 1_800_000_000_000;
    // what a holder of the secret makes: a valid MAC over an expiry in the year 2100
    const forged = new UrlSigner("s3cret", "http://controller", 75 * 365 * 24 * 3600_000);
    const { path, expires, signature } = parts(forged.sign("GET", "/internal/v1/packages/abc", now));
    expect(signer.verify("GET", path, expires, signature, now)).toBe(false);
    // a minute of clock skew between signer and verifier is tolerated, an hour is not
    const ahead = parts(signer.sign("GET", "/x", now + 60_000));
    expect(signer.verify("GET", ahead.path, ahead.expires, ahead.signature, now)).toBe(true);
    const hour = parts(signer.sign("GET", "/x", now + 3600_000));
    expect(signer.verify("GET", hour.path, hour.expires, hour.signature, now)).toBe(false);
  });

  test("missing or malformed parameters are refused", () => {
    const now = Date.now();
    const { path, expires, signature } = parts(signer.sign("GET", "/x", now));
    expect(signer.verify("GET", path, null, signature, now)).toBe(false);
    expect(signer.verify("GET", path, expires, null, now)).toBe(false);
    expect(signer.verify("GET", path, "1e30", signature, now)).toBe(false);
    expect(signer.verify("GET", path, expires, "zz", now)).toBe(false);
  });
});
