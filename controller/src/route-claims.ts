// Who may claim which route (issue 24). Each rule is one validator with its own message, as Cloud
// Controller keeps them; `judgeClaim` runs them. Pure: route-mapping.ts gathers the facts inside the
// transaction that then inserts or maps the route, for POST /v3/routes (and so `map-route` and a
// manifest's `routes:`), an app's default and random route, and mapping a route to an app.

export interface ClaimDomain { guid: string; name: string; shared: boolean; org_guid: string | null }
export interface ClaimSpace { guid: string; org_guid: string }
/** A route that already exists on the claimed host and domain, whatever its path and space. */
export interface HostRoute { guid: string; space_guid: string; path: string; created_at: number }

export interface RouteClaim {
  /** lower-cased; "" is the bare domain */
  host: string;
  path: string;
  domain: ClaimDomain;
  /** the space that would hold the route */
  space: ClaimSpace;
  /** every route on this host and domain, any path, any space (the claimed one included if it exists) */
  onHost: readonly HostRoute[];
  /** every domain: a route must not be another domain's own name */
  domains: readonly ClaimDomain[];
  /** the user claiming is an admin */
  admin: boolean;
}

/**
 * `create`: a route that does not exist yet. `map`: a route the space already holds, mapped to an
 * app or asked for again. The shape and privilege rules judge what is created; the rules on who
 * holds what judge every claim, so a route squatted before these rules cannot be mapped again.
 */
export type ClaimKind = "create" | "map";

export interface ClaimRule {
  name: string;
  on: readonly ClaimKind[];
  /** the reason the claim is refused, or undefined */
  refuse(c: RouteClaim): string | undefined;
}

export type ClaimVerdict = { ok: true } | { ok: false; rule: string; message: string };

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const RESERVED_FOR_ANOTHER_SPACE = "Routes for this host and domain have been reserved for another space.";

/**
 * The space that owns a host on a domain: the one holding its oldest route (ties: the smaller guid).
 * Cloud Controller's rule is that the first space to hold a host keeps it, and from issue 24 on no
 * other space can add a route to it. Before that, another space could add a route with a path to
 * a host it did not hold (`hello/admin` beside someone's `hello`); such a pre-existing conflict is
 * settled the same way: the oldest holder keeps the host (its pushes and new paths go on working),
 * the later one's routes stay until an admin deletes them, but it cannot map them again nor add more.
 */
export function hostOwner(onHost: readonly HostRoute[]): string | undefined {
  let first: HostRoute | undefined;
  for (const r of onHost)
    if (!first || r.created_at < first.created_at || (r.created_at === first.created_at && r.guid < first.guid)) first = r;
  return first?.space_guid;
}

export const CLAIM_RULES: readonly ClaimRule[] = [
  {
    name: "path-shape",
    on: ["create"],
    refuse: ({ path }) =>
      path !== "" && (!path.startsWith("/") || path.endsWith("/") || /[?#\s]/.test(path) || path.length > 128)
        ? `Path "${path}" is invalid: it must start with '/', not end with '/', hold no '?', '#' or spaces, and be at most 128 characters.`
        : undefined,
  },
  {
    // the bare shared domain would catch requests meant for the platform itself
    name: "shared-domain-needs-host",
    on: ["create"],
    refuse: ({ host, domain }) => (domain.shared && host === "" ? "Missing host. Routes in shared domains must have a host defined." : undefined),
  },
  {
    // one label on a shared domain: `x.hello` would be a name under another tenant's host `hello`
    name: "host-shape",
    on: ["create"],
    refuse: ({ host, domain }) => {
      if (host === "") return undefined;
      if (host.length + 1 + domain.name.length > 253) return "Host combined with domain name must be no more than 253 characters.";
      if (host === "*") return undefined;
      if (domain.shared && !LABEL.test(host))
        return `Host "${host}" is not allowed on the shared domain ${domain.name}: a host there is one DNS label (letters, digits and '-', at most 63 characters, no dots), or "*" for an admin.`;
      if (!host.split(".").every((l, i) => LABEL.test(l) || (i === 0 && l === "*")))
        return `Host "${host}" is not a valid DNS name: use letters, digits and '-' (at most 63 per label), with "*" only as the first label.`;
      return undefined;
    },
  },
  {
    // a wildcard on a shared domain takes every unknown host of every tenant (typos included)
    name: "wildcard-needs-admin",
    on: ["create"],
    refuse: ({ host, domain, admin }) =>
      domain.shared && host.split(".")[0] === "*" && !admin
        ? "You do not have sufficient permissions to create a route with a wildcard host on a domain not scoped to an organization."
        : undefined,
  },
  {
    name: "private-domain-of-its-org",
    on: ["create", "map"],
    refuse: ({ domain, space }) =>
      !domain.shared && domain.org_guid !== space.org_guid ? `Invalid domain. Domain '${domain.name}' is not available in this space's organization.` : undefined,
  },
  {
    // `acme` on skiff.localhost is the whole of the domain acme.skiff.localhost
    name: "route-is-not-a-domain",
    on: ["create", "map"],
    refuse: ({ host, domain, domains, space }) => {
      if (host === "") return undefined;
      const fqdn = `${host}.${domain.name}`;
      const other = domains.find((d) => d.name === fqdn);
      if (!other) return undefined;
      // naming another org's private domain would tell that it exists
      return other.shared || other.org_guid === space.org_guid ? `Route conflicts with domain '${fqdn}'.` : RESERVED_FOR_ANOTHER_SPACE;
    },
  },
  {
    // a host belongs to one space, whatever the path: `hello/admin` is refused beside another space's `hello`
    name: "host-reserved-for-its-space",
    on: ["create", "map"],
    refuse: ({ onHost, space }) => {
      const owner = hostOwner(onHost);
      return owner !== undefined && owner !== space.guid ? `${RESERVED_FOR_ANOTHER_SPACE} Pick another host, or push with --random-route.` : undefined;
    },
  },
  {
    // only a pre-existing conflict gets here: this space owns the host, another holds this very path
    name: "path-held-elsewhere",
    on: ["create"],
    refuse: ({ onHost, space, host, path, domain }) =>
      onHost.some((r) => r.path === path && r.space_guid !== space.guid)
        ? `Route already exists with host '${host}' and path '${path}' for domain '${domain.name}' in another space, made before one space owned each host: an admin can delete it.`
        : undefined,
  },
];

export function judgeClaim(claim: RouteClaim, kind: ClaimKind): ClaimVerdict {
  for (const rule of CLAIM_RULES) {
    if (!rule.on.includes(kind)) continue;
    const message = rule.refuse(claim);
    if (message !== undefined) return { ok: false, rule: rule.name, message };
  }
  return { ok: true };
}
