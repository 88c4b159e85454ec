import { describe, expect, test } from "bun:test";
import { CLAIM_RULES, hostOwner, judgeClaim, RESERVED_FOR_ANOTHER_SPACE, type ClaimDomain, type HostRoute, type RouteClaim } from "./route-claims.ts";

const shared: ClaimDomain = { guid: "d-shared", name: "skiff.localhost", shared: true, org_guid: null };
const acme: ClaimDomain = { guid: "d-acme", name: "acme.example", shared: false, org_guid: "org-acme" };
const mine = { guid: "space-mine", org_guid: "org-acme" };
const theirs = { guid: "space-theirs", org_guid: "org-evil" };
const route = (space_guid: string, path: string, created_at: number, guid = `r-${space_guid}-${path}-${created_at}`): HostRoute => ({ guid, space_guid, path, created_at });

const claim = (o: Partial<RouteClaim> = {}): RouteClaim => ({
  host: "hello", path: "", domain: shared, space: mine, onHost: [], domains: [shared, acme], admin: false, ...o,
});
const refusal = (c: RouteClaim, kind: "create" | "map" = "create") => {
  const v = judgeClaim(c, kind);
  return v.ok ? undefined : v.rule;
};

describe("judgeClaim (issue 24)", () => {
  test("a free host on the shared domain is anyone's", () => {
    expect(judgeClaim(claim(), "create")).toEqual({ ok: true });
    expect(judgeClaim(claim({ path: "/v1" }), "create")).toEqual({ ok: true });
  });

  test("a host belongs to one space, whatever the path", () => {
    const held = [route(mine.guid, "", 1)];
    for (const path of ["", "/admin", "/a/b"]) {
      const v = judgeClaim(claim({ space: theirs, path, onHost: held }), "create");
      expect(v.ok).toBe(false);
      if (!v.ok) {
        expect(v.rule).toBe("host-reserved-for-its-space");
        expect(v.message).toStartWith(RESERVED_FOR_ANOTHER_SPACE);
      }
    }
    // the holder adds paths freely
    expect(judgeClaim(claim({ path: "/admin", onHost: held }), "create")).toEqual({ ok: true });
    // held only by a path route: the bare host is the holder's too
    expect(refusal(claim({ space: theirs, onHost: [route(mine.guid, "/api", 1)] }))).toBe("host-reserved-for-its-space");
  });

  test("a pre-existing conflict: the oldest holder keeps the host; the squatter can neither add nor map again", () => {
    const onHost = [route(mine.guid, "", 100), route(theirs.guid, "/admin", 200)];
    expect(hostOwner(onHost)).toBe(mine.guid);
    expect(judgeClaim(claim({ onHost }), "map")).toEqual({ ok: true });
    expect(judgeClaim(claim({ path: "/v2", onHost }), "create")).toEqual({ ok: true });
    expect(refusal(claim({ space: theirs, path: "/admin", onHost }), "map")).toBe("host-reserved-for-its-space");
    expect(refusal(claim({ space: theirs, path: "/other", onHost }))).toBe("host-reserved-for-its-space");
    // the owner cannot take the squatter's exact path (the row exists): an admin deletes it
    expect(refusal(claim({ path: "/admin", onHost }))).toBe("path-held-elsewhere");
    // ties on time go to the smaller guid, so every controller agrees
    expect(hostOwner([route("b", "", 5, "g2"), route("a", "/x", 5, "g1")])).toBe("a");
    expect(hostOwner([])).toBeUndefined();
  });

  test("shared domain: one DNS label, never empty, a wildcard only for an admin", () => {
    expect(refusal(claim({ host: "" }))).toBe("shared-domain-needs-host");
    expect(refusal(claim({ host: "", admin: true }))).toBe("shared-domain-needs-host");
    for (const host of ["x.hello", "*.hello", "a.b.c", "-x", "x-", "a_b", "a".repeat(64)]) expect(`${host}: ${refusal(claim({ host }))}`).toBe(`${host}: host-shape`);
    expect(refusal(claim({ host: "a".repeat(63) }))).toBeUndefined();
    expect(refusal(claim({ host: "*" }))).toBe("wildcard-needs-admin");
    expect(refusal(claim({ host: "*", admin: true }))).toBeUndefined();
    expect(judgeClaim(claim({ host: "*" }), "create")).toMatchObject({ message: expect.stringContaining("wildcard host") });
  });

  test("a private domain: only its org's spaces; there dotted hosts, wildcards and the bare domain are the org's own", () => {
    expect(refusal(claim({ domain: acme, host: "x", space: theirs }))).toBe("private-domain-of-its-org");
    expect(refusal(claim({ domain: acme, host: "x", space: theirs, admin: true }))).toBe("private-domain-of-its-org");
    expect(refusal(claim({ domain: acme, host: "x", space: theirs }), "map")).toBe("private-domain-of-its-org");
    for (const host of ["", "*", "a.b", "*.b"]) expect(refusal(claim({ domain: acme, host }))).toBeUndefined();
    expect(refusal(claim({ domain: acme, host: "a.*" }))).toBe("host-shape");
  });

  test("a route cannot be another domain's own name, and does not name another org's private one", () => {
    const sub: ClaimDomain = { guid: "d-sub", name: "acme.skiff.localhost", shared: false, org_guid: "org-acme" };
    const c = claim({ host: "acme", domains: [shared, sub] });
    expect(judgeClaim(c, "create")).toEqual({ ok: false, rule: "route-is-not-a-domain", message: "Route conflicts with domain 'acme.skiff.localhost'." });
    expect(judgeClaim({ ...c, space: theirs }, "create")).toEqual({ ok: false, rule: "route-is-not-a-domain", message: RESERVED_FOR_ANOTHER_SPACE });
  });

  test("paths keep their shape", () => {
    for (const path of ["admin", "/admin/", "/a?b", "/a b", "/" + "a".repeat(128)]) expect(refusal(claim({ path }))).toBe("path-shape");
    expect(refusal(claim({ path: "/a/b-c" }))).toBeUndefined();
  });

  test("mapping an existing route judges who holds it, not how it was made", () => {
    // an admin's wildcard in a developer's space is the developer's to map
    expect(judgeClaim(claim({ host: "*", onHost: [route(mine.guid, "", 1)] }), "map")).toEqual({ ok: true });
    expect(CLAIM_RULES.filter((r) => r.on.includes("map")).map((r) => r.name)).toEqual(["private-domain-of-its-org", "route-is-not-a-domain", "host-reserved-for-its-space"]);
  });
});
