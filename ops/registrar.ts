// The registrar (issue 27): runs on the first controller host and holds what makes a cluster one — the
// CA key, the NATS operator's and account's keys (bus/nats-jwt.ts), the list of member hosts with their
// NATS users' public keys, the join tokens (sha256 only) and the secrets the controllers and health
// managers share. Hosts join over HTTPS with a token and a certificate request and get a user JWT
// signed by the account, which every NATS host trusts without a change to its config; NATS hosts
// long-poll the registrar only for what does change it: cluster routes and revoked users.

import { randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { accountJwt, createTrust, decodeJwt, issueSystemUser, issueUser, operatorConfig, type NatsOperatorConfig, type NatsTrust } from "../bus/nats-jwt.ts";
import { natsUserName, permissionsFor, type NatsIdentity, type NatsRole } from "../bus/nats-permissions.ts";
import { isSubjectToken } from "../bus/subjects.ts";
import { certInfo, createCa, fingerprint, issueCertificate, signCsr, type KeyPair } from "./cluster-ca.ts";
import { sha256, spendToken, newToken, formatToken, type StoredToken } from "./join-token.ts";

export const Roles = ["nats", "controller", "health", "router", "agent"] as const;
export type Role = (typeof Roles)[number];

/**
 * NATS users that are not hosts: Cloud Foundry's route-registrar (JSON router.register for things skiff
 * does not run) and an operator's (tests, debugging). The registrar's admin makes them; no join token.
 */
export const CredentialRoles = ["route-registrar", "operator"] as const;
export type CredentialRole = (typeof CredentialRoles)[number];

export const DefaultPorts = { registrar: 9023, controller: 9022, nats: 4222, natsCluster: 6222, natsMonitor: 8222, router: 8080, routerStatus: 8081 } as const;

export interface Member {
  name: string;
  role: Role | CredentialRole;
  address: string;
  natsUser?: string;
  /** the NATS user's public nkey (what a revocation names); its seed went to the member only */
  natsPublicKey?: string;
  agentId?: string;
  nodeSecretSha256: string;
  certSerial: string;
  joinedAt: number;
}

export interface ClusterState {
  name: string;
  registrarUrl: string;
  domain: string;
  /** shared by every controller and health manager */
  databaseUrl?: string;
  adminPassword: string;
  credentialsKey: string;
  /** bumped whenever what NATS hosts' configs hold changes: routes, revoked users */
  version: number;
  /** NATS users taken away (a leave, a rejoin under the same name): public key → when (s) */
  natsRevoked: Record<string, number>;
  /** skiff's account JWT with those revocations, issued anew (later each time) when they change */
  natsAccountJwt: string;
  certDays: number;
  members: Member[];
}

export function registrarFiles(dir: string) {
  return {
    dir,
    caKey: join(dir, "ca.key"),
    caCert: join(dir, "ca.pem"),
    cert: join(dir, "registrar.pem"),
    key: join(dir, "registrar.key"),
    state: join(dir, "cluster.json"),
    tokens: join(dir, "tokens.json"),
    adminSecret: join(dir, "admin-secret"),
    /** the NATS operator's, system account's and skiff account's seeds */
    natsTrust: join(dir, "nats-trust.json"),
  };
}

export function writeAtomic(path: string, data: string, mode = 0o600): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}

const readJson = <T>(path: string, fallback: T): T => (existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as T) : fallback);

/** `skiff-node init`: the CA, the registrar's own certificate, the cluster's shared secrets. */
export function createCluster(dir: string, opts: { name: string; address: string; port?: number; domain: string; databaseUrl?: string; certDays?: number }): ClusterState {
  const f = registrarFiles(dir);
  if (existsSync(f.state)) throw new Error(`a cluster already exists here (${f.state}); skiff-node init runs once, on the first controller host`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = createCa(`skiff ${opts.name} CA`);
  writeAtomic(f.caKey, ca.keyPem);
  writeAtomic(f.caCert, ca.certPem, 0o644);
  const own = issueCertificate(ca, "registrar", [opts.address], [], 365);
  writeAtomic(f.key, own.keyPem);
  writeAtomic(f.cert, own.certPem);
  writeAtomic(f.adminSecret, randomBytes(24).toString("base64url") + "\n");
  const trust = createTrust();
  writeAtomic(f.natsTrust, JSON.stringify(trust, null, 2));
  const state: ClusterState = {
    name: opts.name,
    registrarUrl: `https://${opts.address}:${opts.port ?? DefaultPorts.registrar}`,
    domain: opts.domain,
    databaseUrl: opts.databaseUrl,
    adminPassword: randomBytes(18).toString("base64url"),
    credentialsKey: randomBytes(32).toString("base64"),
    version: 1,
    natsRevoked: {},
    natsAccountJwt: accountJwt(trust, {}, Math.floor(Date.now() / 1000)),
    certDays: opts.certDays ?? 90,
    members: [],
  };
  writeAtomic(f.state, JSON.stringify(state, null, 2));
  writeAtomic(f.tokens, "[]");
  return state;
}

export interface JoinRequest {
  token_id: string;
  secret: string;
  role: Role;
  name: string;
  address: string;
  csr: string;
}

export interface JoinAnswer {
  ca_pem: string;
  cert_pem: string;
  node_secret: string;
  /** the component's environment, as the cluster decides it (the joining host adds its local paths) */
  env: Record<string, string>;
  /** NATS hosts only: what their config lists */
  nats?: NatsConfigAnswer;
  /** its NATS user's .creds file (JWT and seed), written 0600 by the member; a NATS host's is a system user's */
  nats_creds?: string;
}

export interface NatsConfigAnswer {
  version: number;
  /** the operator, the accounts (with their revocations): public, the same for every NATS host */
  operator: NatsOperatorConfig;
  /** the other NATS hosts' cluster addresses */
  routes: string[];
}

export class JoinRefused extends Error {
  override name = "JoinRefused";
  constructor(message: string, readonly status = 403) {
    super(message);
  }
}

/** The registrar's logic, apart from HTTP: tested directly. */
export class Registrar {
  readonly files: ReturnType<typeof registrarFiles>;
  private readonly acked = new Map<string, number>();
  private readonly waiters = new Set<() => void>();

  constructor(dir: string, private readonly now: () => number = Date.now) {
    this.files = registrarFiles(dir);
  }

  state(): ClusterState {
    return readJson<ClusterState>(this.files.state, undefined as never);
  }
  private save(s: ClusterState): void {
    writeAtomic(this.files.state, JSON.stringify(s, null, 2));
  }
  ca(): KeyPair {
    return { keyPem: readFileSync(this.files.caKey, "utf8"), certPem: readFileSync(this.files.caCert, "utf8") };
  }
  private trust(): NatsTrust {
    if (!existsSync(this.files.natsTrust)) {
      throw new Error(`this cluster was made before NATS users were JWTs (no ${this.files.natsTrust}): make it again with skiff-node init and join each host (docs/operations.md, "Upgrade")`);
    }
    return JSON.parse(readFileSync(this.files.natsTrust, "utf8")) as NatsTrust;
  }
  caFingerprint(): string {
    return fingerprint(readFileSync(this.files.caCert, "utf8"));
  }

  createToken(opts: { ttlMs: number; uses: number; roles: string[] }): string {
    const s = this.state();
    const { token, stored } = newToken({ registrarUrl: s.registrarUrl, caFingerprint: this.caFingerprint(), now: this.now(), ...opts });
    const tokens = readJson<StoredToken[]>(this.files.tokens, []).filter((t) => t.expiresAt > this.now() && t.usesLeft > 0);
    writeAtomic(this.files.tokens, JSON.stringify([...tokens, stored], null, 2));
    return formatToken(token);
  }

  private natsMembers(s: ClusterState): Member[] {
    return s.members.filter((m) => m.role === "nats");
  }

  natsUrls(s = this.state()): string[] {
    return this.natsMembers(s).map((m) => `nats://${m.address}:${DefaultPorts.nats}`);
  }

  controllerUrl(s = this.state()): string | undefined {
    const c = s.members.find((m) => m.role === "controller");
    return c ? `https://${c.address}:${DefaultPorts.controller}` : undefined;
  }

  natsConfig(forName?: string): NatsConfigAnswer {
    const s = this.state();
    const routes = this.natsMembers(s).filter((m) => m.name !== forName).map((m) => `nats-route://${m.address}:${DefaultPorts.natsCluster}`);
    return { version: s.version, operator: operatorConfig(this.trust(), s.natsAccountJwt), routes };
  }

  async join(req: JoinRequest): Promise<JoinAnswer> {
    if (!(Roles as readonly string[]).includes(req.role)) throw new JoinRefused(`no role ${req.role}: one of ${Roles.join(", ")}`, 400);
    if (!isSubjectToken(req.name) || req.name.length > 60) throw new JoinRefused(`a host name may hold only letters, digits, - and _: ${req.name}`, 400);
    const tokens = readJson<StoredToken[]>(this.files.tokens, []);
    const spent = spendToken(tokens, req.token_id, req.secret, req.role, this.now());
    if (!spent.ok) throw new JoinRefused(spent.reason);
    writeAtomic(this.files.tokens, JSON.stringify(spent.tokens, null, 2));
    return this.admit(req);
  }

  /** A NATS user (and a client certificate) for a route-registrar or an operator: the admin's call. */
  async issueCredentials(req: { role: CredentialRole; name: string; csr: string }): Promise<JoinAnswer> {
    if (!(CredentialRoles as readonly string[]).includes(req.role)) throw new JoinRefused(`credentials are for ${CredentialRoles.join(" or ")}, not ${req.role}`, 400);
    if (!isSubjectToken(req.name) || req.name.length > 60) throw new JoinRefused(`a name may hold only letters, digits, - and _: ${req.name}`, 400);
    return this.admit({ ...req, address: "" });
  }

  /** Takes a route-registrar's or an operator's NATS user away again. */
  async revokeCredentials(role: string, name: string): Promise<boolean> {
    const s = this.state();
    const gone = s.members.filter((m) => m.name === name && m.role === role && (CredentialRoles as readonly string[]).includes(m.role));
    if (gone.length === 0) return false;
    await this.remove(s, gone, "");
    return true;
  }

  private async admit(req: { role: Role | CredentialRole; name: string; address: string; csr: string }): Promise<JoinAnswer> {
    const s = this.state();
    const certPem = signCsr(this.ca(), { csrPem: req.csr, commonName: req.name, ips: req.address ? [req.address] : [], dnsNames: [req.name], days: s.certDays });
    const nodeSecret = randomBytes(24).toString("base64url");
    const member: Member = { name: req.name, role: req.role, address: req.address, nodeSecretSha256: sha256(nodeSecret), certSerial: certInfo(certPem).serial, joinedAt: this.now() };
    let creds: string | undefined;
    if (req.role !== "nats") {
      member.natsUser = natsUserName(req.role as NatsRole, req.name);
      if (req.role === "agent") member.agentId = req.name;
      const user = issueUser(this.trust(), member.natsUser, permissionsFor(identityOf(member)), this.now());
      member.natsPublicKey = user.publicKey;
      creds = user.creds;
    } else {
      // nats-sync's: it hands the NATS host account updates (revocations) on the bus
      const user = issueSystemUser(this.trust(), `nats-sync.${req.name}`, this.now());
      member.natsPublicKey = user.publicKey;
      creds = user.creds;
    }
    // A host that joins again under the same name and role replaces its old self: its old NATS user is
    // revoked. A new user needs no NATS host to change its config; a new NATS host's routes do.
    const fresh = this.state();
    const replaced = fresh.members.filter((m) => m.name === req.name && m.role === req.role);
    fresh.members = [...fresh.members.filter((m) => !replaced.includes(m)), member];
    this.revoke(fresh, replaced);
    const natsChanged = req.role === "nats" || replaced.some((m) => m.natsPublicKey && m.role !== "nats");
    if (natsChanged) fresh.version++;
    this.save(fresh);
    if (natsChanged) {
      this.wake();
      await this.natsCaughtUp(fresh.version, req.name);
    }
    const env = this.roleEnv(fresh, member);
    return {
      ca_pem: readFileSync(this.files.caCert, "utf8"),
      cert_pem: certPem,
      node_secret: nodeSecret,
      env,
      nats: req.role === "nats" ? this.natsConfig(req.name) : undefined,
      nats_creds: creds,
    };
  }

  /** What the cluster decides of a component's environment. */
  private roleEnv(s: ClusterState, m: Member): Record<string, string> {
    const env: Record<string, string> = {};
    if (m.role !== "nats") {
      env.SKIFF_NATS_URL = this.natsUrls(s).join(",");
      // the member writes its .creds file and adds SKIFF_NATS_CREDS naming it
      env.SKIFF_NATS_USER = m.natsUser!;
    }
    const controllerUrl = this.controllerUrl(s);
    switch (m.role) {
      case "controller":
        Object.assign(env, {
          SKIFF_DOMAIN: s.domain,
          SKIFF_CONTROLLER_PORT: String(DefaultPorts.controller),
          SKIFF_CONTROLLER_PUBLIC_URL: `https://${m.address}:${DefaultPorts.controller}`,
          SKIFF_BOOTSTRAP_ADMIN_PASSWORD: s.adminPassword,
          SKIFF_CREDENTIALS_KEY: s.credentialsKey,
          ...(s.databaseUrl ? { SKIFF_DATABASE_URL: s.databaseUrl } : {}),
        });
        break;
      case "health":
        Object.assign(env, {
          SKIFF_CREDENTIALS_KEY: s.credentialsKey,
          ...(controllerUrl ? { SKIFF_CONTROLLER_URL: controllerUrl } : {}),
          ...(s.databaseUrl ? { SKIFF_DATABASE_URL: s.databaseUrl } : {}),
        });
        break;
      case "router":
        Object.assign(env, { SKIFF_ROUTER_HOST: m.address, SKIFF_ROUTER_PORT: String(DefaultPorts.router), SKIFF_ROUTER_STATUS_PORT: String(DefaultPorts.routerStatus) });
        break;
      case "agent":
        Object.assign(env, { SKIFF_AGENT_ID: m.agentId!, SKIFF_AGENT_IP: m.address });
        break;
    }
    return env;
  }

  /** A member proves itself with the node secret it got at join. */
  private member(name: string, role: string | undefined, nodeSecret: string): Member {
    const s = this.state();
    const given = Buffer.from(sha256(nodeSecret), "hex");
    const m = s.members.find((x) => x.name === name && (role === undefined || x.role === role) && timingSafeEqual(Buffer.from(x.nodeSecretSha256, "hex"), given));
    if (!m) throw new JoinRefused(`no member ${name}${role ? ` (${role})` : ""} with that node secret`, 401);
    return m;
  }

  /** A new certificate for a member (rotation): same names, a new key it made itself. */
  renew(name: string, nodeSecret: string, csr: string): { cert_pem: string; ca_pem: string } {
    const m = this.member(name, undefined, nodeSecret);
    const s = this.state();
    const cert = signCsr(this.ca(), { csrPem: csr, commonName: m.name, ips: [m.address], dnsNames: [m.name], days: s.certDays });
    const serial = certInfo(cert).serial;
    for (const x of s.members) if (x.name === name) x.certSerial = serial;
    this.save(s);
    return { cert_pem: cert, ca_pem: readFileSync(this.files.caCert, "utf8") };
  }

  /** `skiff-node leave`: the member's NATS user goes from every NATS host's config. */
  async leave(name: string, role: string, nodeSecret: string): Promise<void> {
    this.member(name, role, nodeSecret);
    const s = this.state();
    await this.remove(s, s.members.filter((x) => x.name === name && x.role === role), name);
  }

  /** Members gone: their NATS users revoked on every NATS host before this returns (at most 15 s). */
  private async remove(s: ClusterState, gone: Member[], except: string): Promise<void> {
    s.members = s.members.filter((m) => !gone.includes(m));
    this.revoke(s, gone);
    s.version++;
    this.save(s);
    this.wake();
    await this.natsCaughtUp(s.version, except);
  }

  private revoke(s: ClusterState, gone: Member[]): void {
    // nats-sync's system users are not in skiff's account; a NATS host that leaves stops serving anyway
    const users = gone.filter((m) => m.natsPublicKey && m.role !== "nats");
    if (users.length === 0) return;
    // a user JWT issued at or before this second is refused (nats-server compares the JWT's iat)
    const nowS = Math.ceil(this.now() / 1000);
    for (const m of users) s.natsRevoked[m.natsPublicKey!] = nowS;
    const lastIat = Number(decodeJwt(s.natsAccountJwt).iat);
    s.natsAccountJwt = accountJwt(this.trust(), s.natsRevoked, Math.max(nowS, lastIat + 1));
  }

  /** NATS hosts long-poll for a version newer than the one they run, which acknowledges that one. */
  async waitNatsConfig(name: string, nodeSecret: string, have: number, timeoutMs = 25_000): Promise<NatsConfigAnswer> {
    this.member(name, "nats", nodeSecret);
    this.acked.set(name, have);
    this.wake();
    const deadline = this.now() + timeoutMs;
    while (this.state().version <= have && this.now() < deadline) await new Promise<void>((r) => (this.waiters.add(r), setTimeout(r, 1000)));
    return this.natsConfig(name);
  }

  private wake(): void {
    for (const w of [...this.waiters]) (this.waiters.delete(w), w());
  }

  /** Waits (at most 15 s) until every NATS host has reloaded a config of at least `version`. */
  private async natsCaughtUp(version: number, except: string): Promise<void> {
    const deadline = this.now() + 15_000;
    const behind = () => this.natsMembers(this.state()).filter((m) => m.name !== except && (this.acked.get(m.name) ?? 0) < version);
    while (behind().length > 0 && this.now() < deadline) await new Promise<void>((r) => (this.waiters.add(r), setTimeout(r, 200)));
  }

  adminOk(header: string | null): boolean {
    const secret = readFileSync(this.files.adminSecret, "utf8").trim();
    const given = header?.replace(/^Admin /, "") ?? "";
    return given.length === secret.length && timingSafeEqual(Buffer.from(given), Buffer.from(secret));
  }
}

export function identityOf(m: Member): NatsIdentity {
  return { role: m.role as NatsRole, user: m.natsUser!, agentId: m.agentId };
}

/** The registrar's HTTPS API. */
export function serveRegistrar(reg: Registrar, opts: { port: number; hostname?: string; log?: (msg: string, f?: object) => void }) {
  const log = opts.log ?? ((m, f) => console.log(JSON.stringify({ component: "registrar", msg: m, ...f })));
  const json = async (req: Request) => (await req.json().catch(() => ({}))) as Record<string, any>;
  const nodeAuth = (req: Request) => req.headers.get("authorization")?.replace(/^Node /, "") ?? "";
  const server = Bun.serve({
    port: opts.port,
    hostname: opts.hostname ?? "0.0.0.0",
    tls: { cert: readFileSync(reg.files.cert, "utf8"), key: readFileSync(reg.files.key, "utf8") },
    idleTimeout: 60,
    fetch: async (req) => {
      const url = new URL(req.url);
      try {
        if (req.method === "GET" && url.pathname === "/v1/ca") return new Response(readFileSync(reg.files.caCert, "utf8"));
        if (req.method === "POST" && url.pathname === "/v1/join") {
          const b = (await json(req)) as JoinRequest;
          const answer = await reg.join(b);
          log("joined", { name: b.name, role: b.role, address: b.address });
          return Response.json(answer);
        }
        if (req.method === "POST" && url.pathname === "/v1/renew") {
          const b = await json(req);
          const answer = reg.renew(String(b.name), nodeAuth(req), String(b.csr));
          log("renewed a certificate", { name: b.name });
          return Response.json(answer);
        }
        if (req.method === "POST" && url.pathname === "/v1/leave") {
          const b = await json(req);
          await reg.leave(String(b.name), String(b.role), nodeAuth(req));
          log("left", { name: b.name, role: b.role });
          return Response.json({ ok: true });
        }
        if (url.pathname === "/v1/credentials" || url.pathname === "/v1/credentials/revoke") {
          if (!reg.adminOk(req.headers.get("authorization"))) return Response.json({ error: "the registrar's admin secret is wanted" }, { status: 401 });
          const b = await json(req);
          if (url.pathname.endsWith("/revoke")) return Response.json({ ok: await reg.revokeCredentials(String(b.role), String(b.name)) });
          const answer = await reg.issueCredentials({ role: b.role as CredentialRole, name: String(b.name), csr: String(b.csr) });
          log("issued credentials", { name: b.name, role: b.role });
          return Response.json(answer);
        }
        if (req.method === "GET" && url.pathname === "/v1/nats-config") {
          const have = Number(url.searchParams.get("have") ?? 0);
          return Response.json(await reg.waitNatsConfig(url.searchParams.get("name") ?? "", nodeAuth(req), have));
        }
        if (url.pathname === "/v1/tokens" || url.pathname === "/v1/members") {
          if (!reg.adminOk(req.headers.get("authorization"))) return Response.json({ error: "the registrar's admin secret is wanted" }, { status: 401 });
          if (req.method === "GET") return Response.json(reg.state().members.map(({ nodeSecretSha256: _, ...m }) => m));
          const b = await json(req);
          const token = reg.createToken({ ttlMs: Number(b.ttl_ms ?? 30 * 60_000), uses: Number(b.uses ?? 1), roles: (b.roles as string[]) ?? [...Roles] });
          return Response.json({ token });
        }
        return Response.json({ error: "not found" }, { status: 404 });
      } catch (err) {
        const status = err instanceof JoinRefused ? err.status : 400;
        log("refused", { path: url.pathname, reason: (err as Error).message });
        return Response.json({ error: (err as Error).message }, { status });
      }
    },
  });
  log("ready", { port: server.port, url: reg.state().registrarUrl });
  return server;
}
