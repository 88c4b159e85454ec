// skiff-node: turns a host into part of a skiff cluster (issue 27). One command per step an operator
// takes: `init` on the first controller host (CA, registrar, first join token), `join --role …` on every
// host (key, certificate, /etc/skiff/<component>.env 0600, a systemd unit, started and checked),
// `status`, `leave` (a router drains, an agent evacuates), `rotate-certs`, `token create`.
// Where systemd does not run, `supervise` runs the same unit files (supervisor.ts).

import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { connect, credsAuthenticator, type TlsOptions } from "nats";
import { ClaimsUpdateSubject } from "../bus/nats-jwt.ts";
import { natsServerConfig } from "../bus/nats-permissions.ts";
import { agentRuntimeEnv } from "../agent/runtime-env.ts";
import { createKeyAndCsr, fingerprint, issueCertificate } from "./cluster-ca.ts";
import { parseDuration, parseToken } from "./join-token.ts";
import { nodeLayout, unitName, type NodeLayout } from "./node-layout.ts";
import { createCluster, CredentialRoles, DefaultPorts, Registrar, registrarFiles, Roles, serveRegistrar, writeAtomic, type CredentialRole, type JoinAnswer, type NatsConfigAnswer, type Role } from "./registrar.ts";
import { serviceManagerFor, type ServiceManager } from "./service-manager.ts";
import { Supervisor } from "./supervisor.ts";
import { envFileText, unitSpec, unitText, type Component, type InstallPaths } from "./units.ts";

const home = resolve(import.meta.dir, "..");

export class NodeError extends Error {
  override name = "NodeError";
}

interface NodeFile {
  registrarUrl: string;
  caFingerprint: string;
  name: string;
  address: string;
  /** one per role joined: the registrar knows the host by it */
  secrets: Partial<Record<Role, string>>;
  natsVersion?: number;
}

/** The components each role runs. */
const roleComponents: Record<Role, Component[]> = {
  nats: ["nats", "nats-sync"],
  controller: ["controller"],
  health: ["health"],
  router: ["router"],
  agent: ["agent"],
};

function installPaths(layout: NodeLayout): InstallPaths {
  const which = (c: string, fallback: string) => spawnSync("bash", ["-c", `command -v ${c}`], { encoding: "utf8" }).stdout.trim() || fallback;
  const bun = process.execPath;
  return {
    home,
    bun,
    node: which("node", "/usr/bin/node"),
    natsServer: which("nats-server", "/usr/sbin/nats-server"),
    envFile: (c) => layout.envFile(c),
    natsConfig: layout.natsConfig,
    skiffNode: [bun, resolve(home, "ops/skiff-node.ts"), ...(layout.root === "/" ? [] : ["--root", layout.root])],
  };
}

function flags(argv: string[]): { positional: string[]; get(name: string): string | undefined; all(name: string): string[]; has(name: string): boolean } {
  const positional: string[] = [];
  const values = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) {
      positional.push(a);
      continue;
    }
    const [k, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const v = inline ?? (argv[i + 1] && !argv[i + 1]!.startsWith("--") ? argv[++i]! : "true");
    values.set(k, [...(values.get(k) ?? []), v]);
  }
  return { positional, get: (n) => values.get(n)?.at(-1), all: (n) => values.get(n) ?? [], has: (n) => values.has(n) };
}

const readNode = (layout: NodeLayout): NodeFile => {
  if (!existsSync(layout.nodeFile)) throw new NodeError(`this host has not joined a cluster (${layout.nodeFile} is missing): run skiff-node join`);
  return JSON.parse(readFileSync(layout.nodeFile, "utf8")) as NodeFile;
};

function ensureDirs(layout: NodeLayout): void {
  mkdirSync(layout.etc, { recursive: true, mode: 0o700 });
  mkdirSync(layout.unitDir, { recursive: true });
  mkdirSync(layout.runDir, { recursive: true, mode: 0o700 });
}

/** Debian packages a role needs: [a path that proves it is installed, the package]. */
const ROLE_PACKAGES: Partial<Record<Role, [string, string][]>> = {
  nats: [["/usr/sbin/nats-server", "nats-server"]],
  // a sandbox per instance, and the compiler for the agent's reaper (agent/native/reaper.c)
  agent: [["/usr/bin/bwrap", "bubblewrap"], ["/usr/bin/cc", "gcc"], ["/usr/include/stdio.h", "libc6-dev"]],
};
/** What setup builds that a role runs: the router's Node bundle, the agent's native reaper. */
const ROLE_BUILDS: Partial<Record<Role, string>> = { router: "router/dist/router.mjs", agent: "agent/native/dist/reaper.node" };

/** Installs what a role needs on this host (Debian): its packages, then what setup builds for it. */
function installFor(role: Role): void {
  const missing = (ROLE_PACKAGES[role] ?? []).filter(([path]) => !existsSync(path)).map(([, pkg]) => pkg);
  if (missing.length) {
    const r = spawnSync("apt-get", ["install", "-y", ...missing], { stdio: "inherit" });
    if (r.status !== 0) throw new NodeError(`could not install ${missing.join(", ")} (apt-get install ${missing.join(" ")})`);
  }
  const build = ROLE_BUILDS[role];
  if (build && !existsSync(resolve(home, build))) {
    const r = spawnSync("node", ["scripts/setup.mjs", "--build-only"], { cwd: home, stdio: "inherit" });
    if (r.status !== 0) throw new NodeError(`could not build ${build} (node scripts/setup.mjs --build-only)`);
  }
}

function writeUnit(layout: NodeLayout, component: Component): string {
  writeAtomic(layout.unitFile(component), unitText(unitSpec(component, installPaths(layout))), 0o644);
  return unitName(component);
}

/** Waits until the unit logged its ready line; on failure, says why with its last log lines. */
async function waitReady(layout: NodeLayout, sm: ServiceManager, unit: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const s = (await sm.status()).find((u) => u.unit === unit);
    if (s?.ready) return;
    if (s?.active === "failed") break;
    await Bun.sleep(200);
  }
  const logFile = resolve(layout.logDir, unit.replace(/\.service$/, ".log"));
  const tail = sm.kind === "supervisor" ? (existsSync(logFile) ? readFileSync(logFile, "utf8").split("\n").slice(-15).join("\n") : "") : spawnSync("journalctl", ["-u", unit, "-n", "15", "-o", "cat"], { encoding: "utf8" }).stdout;
  throw new NodeError(`${unit} did not reach the cluster within ${timeoutMs / 1000} s. Its last lines:\n${tail}`);
}

/** HTTPS to the registrar, trusting only the cluster CA (pinned by the token before it was trusted). */
async function registrarCall<T>(url: string, path: string, init: { method?: string; body?: unknown; auth?: string; ca: string }): Promise<T> {
  const res = await fetch(url + path, {
    method: init.method ?? "POST",
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    headers: { "content-type": "application/json", ...(init.auth ? { authorization: init.auth } : {}) },
    tls: { ca: init.ca },
  } as RequestInit);
  const body = (await res.json().catch(() => ({}))) as T & { error?: string };
  if (!res.ok) throw new NodeError(`the registrar refused: ${body.error ?? res.status}`);
  return body;
}

/** The CA as the registrar serves it, checked against the token's pin before anything else is trusted. */
async function pinnedCa(registrarUrl: string, pin: string): Promise<string> {
  const res = await fetch(`${registrarUrl}/v1/ca`, { tls: { rejectUnauthorized: false } } as RequestInit).catch((err) => {
    throw new NodeError(`cannot reach the registrar at ${registrarUrl}: ${(err as Error).message}`);
  });
  const ca = await res.text();
  if (fingerprint(ca) !== pin) throw new NodeError(`the registrar at ${registrarUrl} showed a CA whose sha256 is not the token's: refusing to join (someone in the middle, or a token from another cluster)`);
  return ca;
}

/** Where a NATS host's full resolver keeps account JWTs (updated by claims updates, never by hand). */
const natsResolverDir = (layout: NodeLayout): string => resolve(layout.stateDir("nats"), "jwt");

function natsConf(layout: NodeLayout, node: NodeFile, nats: NatsConfigAnswer): string {
  const tls = { cert: layout.certFile, key: layout.keyFile, ca: layout.caFile };
  return natsServerConfig({
    serverName: node.name,
    listen: `${node.address}:${DefaultPorts.nats}`,
    tls,
    operator: nats.operator,
    resolverDir: natsResolverDir(layout),
    http: `${node.address}:${DefaultPorts.natsMonitor}`,
    cluster: { name: "skiff", listen: `${node.address}:${DefaultPorts.natsCluster}`, routes: nats.routes, tls },
  });
}

function componentEnv(layout: NodeLayout, component: Component, answer: JoinAnswer | undefined, extra: Record<string, string>): Record<string, string> {
  const data = layout.stateDir(component);
  const env: Record<string, string> = {
    ...(answer?.env ?? {}),
    SKIFF_TLS_CA: layout.caFile,
    SKIFF_TLS_CERT: layout.certFile,
    SKIFF_TLS_KEY: layout.keyFile,
    // every fetch (packages, droplets, the API) trusts the cluster CA
    NODE_EXTRA_CA_CERTS: layout.caFile,
    SKIFF_DATA_DIR: data,
  };
  // the agent's JSC options are read when Bun starts, so they go in its environment file (agent/runtime-env.ts)
  if (component === "agent") Object.assign(env, { SKIFF_AGENT_DIR: data }, agentRuntimeEnv({ ...answer?.env, ...extra }));
  if (component === "router") env.SKIFF_ROUTER_STATUS_PASS_FILE = resolve(data, "status-password");
  return { ...env, ...extra };
}

export async function join(layout: NodeLayout, o: { role: Role; token: string; name: string; address: string; set: Record<string, string>; wait: boolean }): Promise<void> {
  if (!(Roles as readonly string[]).includes(o.role)) throw new NodeError(`--role must be one of ${Roles.join(", ")}`);
  const token = parseToken(o.token);
  ensureDirs(layout);
  installFor(o.role);
  const ca = await pinnedCa(token.registrarUrl, token.caFingerprint);
  // the key is made here and never leaves the host; a host with several roles keeps one key
  const { keyPem, csrPem } = existsSync(layout.keyFile) && existsSync(layout.nodeFile) ? { keyPem: readFileSync(layout.keyFile, "utf8"), csrPem: csrFor(layout.keyFile, o.name) } : createKeyAndCsr(o.name);
  const answer = await registrarCall<JoinAnswer>(token.registrarUrl, "/v1/join", { ca, body: { token_id: token.id, secret: token.secret, role: o.role, name: o.name, address: o.address, csr: csrPem } });
  writeAtomic(layout.caFile, answer.ca_pem, 0o644);
  writeAtomic(layout.keyFile, keyPem);
  writeAtomic(layout.certFile, answer.cert_pem, 0o644);
  if (answer.nats_creds) {
    writeAtomic(layout.credsFile(o.role), answer.nats_creds);
    answer.env.SKIFF_NATS_CREDS = layout.credsFile(o.role);
  }
  const node: NodeFile = existsSync(layout.nodeFile) ? readNode(layout) : { registrarUrl: token.registrarUrl, caFingerprint: token.caFingerprint, name: o.name, address: o.address, secrets: {} };
  node.secrets[o.role] = answer.node_secret;
  if (answer.nats) {
    node.natsVersion = answer.nats.version;
    mkdirSync(natsResolverDir(layout), { recursive: true, mode: 0o700 });
    writeAtomic(layout.natsConfig, natsConf(layout, node, answer.nats));
  }
  writeAtomic(layout.nodeFile, JSON.stringify(node, null, 2));
  const sm = serviceManagerFor(layout);
  const running = new Set((await sm.status()).filter((u) => u.active !== "inactive" && u.active !== "failed").map((u) => u.unit));
  traversable(layout);
  for (const component of roleComponents[o.role]) {
    mkdirSync(layout.stateDir(component), { recursive: true, mode: component === "agent" ? 0o711 : 0o700 });
    if (component === "agent") chmodSync(layout.stateDir(component), 0o711);
    writeAtomic(layout.envFile(component), envFileText(componentEnv(layout, component, answer, component === "nats-sync" ? {} : o.set), `skiff ${component}: written by skiff-node join; 0600`));
    const unit = writeUnit(layout, component);
    await sm.enableNow(unit);
    // joining again gives new credentials: a unit already running takes them up by a restart
    if (running.has(unit)) await sm.restart(unit);
    if (o.wait && component !== "nats-sync") await waitReady(layout, sm, unit);
  }
  console.log(`joined the cluster as ${o.role} ${o.name} (${o.address}); ${roleComponents[o.role].map(unitName).join(", ")} running under ${sm.kind}`);
}

/**
 * The agent's instances run as uids of their own and must pass through to their folders: the folders
 * above every state dir may be entered (0711, never listed) — /var/lib/skiff on a real host, and the
 * test hosts' roots.
 */
function traversable(layout: NodeLayout): void {
  const top = resolve(layout.stateDir("x"), "..");
  mkdirSync(top, { recursive: true, mode: 0o711 });
  for (let d = top; d.startsWith(layout.root) && d !== "/"; d = resolve(d, "..")) {
    const mode = statSync(d).mode & 0o777;
    if ((mode & 0o011) !== 0o011) chmodSync(d, mode | 0o011);
    if (d === layout.root) break;
  }
}

function csrFor(keyFile: string, name: string): string {
  const r = spawnSync("openssl", ["req", "-new", "-key", keyFile, "-subj", `/O=skiff/CN=${name}`], { encoding: "utf8" });
  if (r.status !== 0) throw new NodeError(`openssl req failed: ${r.stderr}`);
  return r.stdout;
}

export async function init(layout: NodeLayout, o: { name: string; address: string; domain: string; databaseUrl?: string; ttl: string; uses: number }): Promise<string> {
  ensureDirs(layout);
  createCluster(layout.registrarDir, { name: o.name, address: o.address, domain: o.domain, databaseUrl: o.databaseUrl });
  writeAtomic(layout.envFile("registrar"), envFileText({ SKIFF_REGISTRAR_DIR: layout.registrarDir }, "skiff registrar: written by skiff-node init; 0600"));
  const sm = serviceManagerFor(layout);
  const unit = writeUnit(layout, "registrar");
  await sm.enableNow(unit);
  await waitReady(layout, sm, unit, 20_000);
  return createTokenLocal(layout, { ttl: o.ttl, uses: o.uses, roles: [...Roles] });
}

/** `token create`, on the registrar's host: asks the registrar with its admin secret (root only). */
export async function createTokenLocal(layout: NodeLayout, o: { ttl: string; uses: number; roles: string[] }): Promise<string> {
  const f = registrarFiles(layout.registrarDir);
  if (!existsSync(f.adminSecret)) throw new NodeError(`no registrar on this host (${f.adminSecret}): make tokens on the first controller host`);
  const reg = new Registrar(layout.registrarDir);
  const { token } = await registrarCall<{ token: string }>(reg.state().registrarUrl, "/v1/tokens", {
    ca: readFileSync(f.caCert, "utf8"),
    auth: `Admin ${readFileSync(f.adminSecret, "utf8").trim()}`,
    body: { ttl_ms: parseDuration(o.ttl), uses: o.uses, roles: o.roles },
  });
  return token;
}

/**
 * `credentials create`, on the registrar's host: a NATS user for a route-registrar or an operator, and a
 * client certificate (the NATS hosts verify one), written to `out` with an env file that names them all.
 */
export async function createCredentials(layout: NodeLayout, o: { role: CredentialRole; name: string; out: string }): Promise<string> {
  if (!(CredentialRoles as readonly string[]).includes(o.role)) throw new NodeError(`--role must be one of ${CredentialRoles.join(", ")}`);
  const f = registrarFiles(layout.registrarDir);
  if (!existsSync(f.adminSecret)) throw new NodeError(`no registrar on this host (${f.adminSecret}): make credentials on the first controller host`);
  const reg = new Registrar(layout.registrarDir);
  const { keyPem, csrPem } = createKeyAndCsr(o.name);
  const answer = await registrarCall<JoinAnswer>(reg.state().registrarUrl, "/v1/credentials", {
    ca: readFileSync(f.caCert, "utf8"),
    auth: `Admin ${readFileSync(f.adminSecret, "utf8").trim()}`,
    body: { role: o.role, name: o.name, csr: csrPem },
  });
  mkdirSync(o.out, { recursive: true, mode: 0o700 });
  const files = { ca: resolve(o.out, "ca.pem"), cert: resolve(o.out, "client.pem"), key: resolve(o.out, "client.key"), creds: resolve(o.out, "nats.creds"), env: resolve(o.out, "nats.env") };
  writeAtomic(files.key, keyPem);
  writeAtomic(files.creds, answer.nats_creds!);
  writeAtomic(files.cert, answer.cert_pem, 0o644);
  writeAtomic(files.ca, answer.ca_pem, 0o644);
  writeAtomic(files.env, envFileText({ ...answer.env, SKIFF_NATS_CREDS: files.creds, SKIFF_TLS_CA: files.ca, SKIFF_TLS_CERT: files.cert, SKIFF_TLS_KEY: files.key }, `skiff ${o.role} ${o.name}: written by skiff-node credentials create; 0600`));
  return files.env;
}

export async function revokeCredentials(layout: NodeLayout, o: { role: string; name: string }): Promise<boolean> {
  const f = registrarFiles(layout.registrarDir);
  if (!existsSync(f.adminSecret)) throw new NodeError(`no registrar on this host (${f.adminSecret})`);
  const reg = new Registrar(layout.registrarDir);
  const { ok } = await registrarCall<{ ok: boolean }>(reg.state().registrarUrl, "/v1/credentials/revoke", { ca: readFileSync(f.caCert, "utf8"), auth: `Admin ${readFileSync(f.adminSecret, "utf8").trim()}`, body: o });
  return ok;
}

/** nats-sync: keeps nats.conf's routes and revoked users in step with the registrar; nats-server gets revocations as account updates, never a reload. */
async function natsSync(layout: NodeLayout): Promise<never> {
  console.log(JSON.stringify({ component: "nats-sync", msg: "ready" }));
  for (;;) {
    try {
      const node = readNode(layout);
      const ca = readFileSync(layout.caFile, "utf8");
      const have = node.natsVersion ?? 0;
      const answer = await registrarCall<NatsConfigAnswer>(node.registrarUrl, `/v1/nats-config?name=${encodeURIComponent(node.name)}&have=${have}`, { method: "GET", ca, auth: `Node ${node.secrets.nats}` });
      if (answer.version !== have) {
        // the file is what nats-server reads when it next starts; the running one needs no reload: a new
        // NATS host connects to the others itself (and they gossip), and revocations come as an update
        writeAtomic(layout.natsConfig, natsConf(layout, node, answer));
        await pushAccountUpdate(layout, node, answer);
        writeAtomic(layout.nodeFile, JSON.stringify({ ...readNode(layout), natsVersion: answer.version }, null, 2));
        console.log(JSON.stringify({ component: "nats-sync", msg: "in step with the registrar", version: answer.version, routes: answer.routes.length }));
      }
    } catch (err) {
      console.log(JSON.stringify({ component: "nats-sync", msg: "cannot sync with the registrar; retrying", error: (err as Error).message }));
      await Bun.sleep(2000);
    }
  }
}

/**
 * Hands the local nats-server skiff's account JWT as a claims update (as nats-sync's system user); it
 * keeps it in its resolver and passes it to the cluster's other NATS hosts, and puts out any user it
 * now revokes. An update no newer than what the server holds changes nothing.
 */
async function pushAccountUpdate(layout: NodeLayout, node: NodeFile, answer: NatsConfigAnswer): Promise<void> {
  const account = Object.entries(answer.operator.accounts).find(([pub]) => pub !== answer.operator.systemAccount)?.[1];
  if (!account) return;
  const nc = await connect({
    servers: [`nats://${node.address}:${DefaultPorts.nats}`],
    authenticator: credsAuthenticator(readFileSync(layout.credsFile("nats"))),
    inboxPrefix: `_INBOX.nats-sync.${node.name}`,
    // the server's certificate must name this host's address (nats.js sends no SNI name for an IP)
    tls: { caFile: layout.caFile, certFile: layout.certFile, keyFile: layout.keyFile, checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(node.address, cert) } as TlsOptions,
    timeout: 5000,
  });
  try {
    const res = await nc.request(ClaimsUpdateSubject, new TextEncoder().encode(account), { timeout: 5000 });
    const body = JSON.parse(new TextDecoder().decode(res.data)) as { data?: { code?: number; message?: string }; error?: { code?: number; description?: string } };
    if (body.error && !/not newer|same/i.test(body.error.description ?? "")) throw new NodeError(`nats-server refused the account update: ${body.error.description}`);
  } finally {
    await nc.close();
  }
}

/** A new key and certificate for this host, from the registrar; the services that serve TLS reload. */
export async function rotateCerts(layout: NodeLayout): Promise<string> {
  const node = readNode(layout);
  const secret = Object.values(node.secrets)[0];
  if (!secret) throw new NodeError("this host holds no membership to renew with");
  const { keyPem, csrPem } = createKeyAndCsr(node.name);
  const ca = readFileSync(layout.caFile, "utf8");
  const answer = await registrarCall<{ cert_pem: string; ca_pem: string }>(node.registrarUrl, "/v1/renew", { ca, auth: `Node ${secret}`, body: { name: node.name, csr: csrPem } });
  // the key first: a process that reads both between the two writes reads the pair at its next reload
  writeAtomic(layout.keyFile, keyPem);
  writeAtomic(layout.certFile, answer.cert_pem, 0o644);
  writeAtomic(layout.caFile, answer.ca_pem, 0o644);
  const sm = serviceManagerFor(layout);
  const running = (await sm.status()).filter((u) => u.active === "active").map((u) => u.unit);
  // nats-server reloads its certificate on SIGHUP; the controller starts a listener with the new one.
  // NATS clients read theirs at the next (re)connect: the old one stays valid until it expires.
  for (const u of [unitName("nats"), unitName("controller")]) if (running.includes(u)) await sm.reload(u);
  if (running.includes(unitName("registrar"))) {
    const f = registrarFiles(layout.registrarDir);
    const reg = new Registrar(layout.registrarDir);
    const own = issueCertificate(reg.ca(), "registrar", [new URL(reg.state().registrarUrl).hostname], [], 365);
    writeAtomic(f.key, own.keyPem);
    writeAtomic(f.cert, own.certPem);
    await sm.restart(unitName("registrar"));
    await waitReady(layout, sm, unitName("registrar"), 20_000);
  }
  return answer.cert_pem;
}

/** `leave`: a router drains (SIGTERM), an agent evacuates (SIGTERM); then its units, files and NATS user go. */
export async function leave(layout: NodeLayout, role: Role): Promise<void> {
  const node = readNode(layout);
  const secret = node.secrets[role];
  if (!secret) throw new NodeError(`this host has not joined as ${role}`);
  const sm = serviceManagerFor(layout);
  for (const component of [...roleComponents[role]].reverse()) {
    await sm.disable(unitName(component)); // KillSignal SIGTERM: drain or evacuate, within TimeoutStopSec
    rmSync(layout.unitFile(component), { force: true });
    rmSync(layout.envFile(component), { force: true });
  }
  await registrarCall(node.registrarUrl, "/v1/leave", { ca: readFileSync(layout.caFile, "utf8"), auth: `Node ${secret}`, body: { name: node.name, role } });
  rmSync(layout.credsFile(role), { force: true }); // revoked now on every NATS host
  delete node.secrets[role];
  writeAtomic(layout.nodeFile, JSON.stringify(node, null, 2));
  console.log(`${node.name} left the cluster as ${role}`);
}

async function status(layout: NodeLayout): Promise<number> {
  const sm = serviceManagerFor(layout);
  const units = await sm.status();
  let bad = 0;
  console.log(`${"unit".padEnd(28)} ${"state".padEnd(11)} ${"ready".padEnd(6)} ${"pid".padEnd(8)} restarts`);
  for (const u of units) {
    if (!u.ready) bad++;
    console.log(`${u.unit.padEnd(28)} ${u.active.padEnd(11)} ${(u.ready ? "yes" : "no").padEnd(6)} ${String(u.pid ?? "-").padEnd(8)} ${u.restarts}`);
  }
  if (existsSync(layout.certFile)) {
    const { certInfo } = await import("./cluster-ca.ts");
    const c = certInfo(readFileSync(layout.certFile, "utf8"));
    console.log(`certificate: ${c.subject.replace(/\n/g, ", ")}, serial ${c.serial}, valid to ${c.validTo.toISOString()}`);
  }
  return bad === 0 ? 0 : 1;
}

const usage = `skiff-node — join a host to a skiff cluster

  skiff-node init --name NAME --address IP [--domain D] [--database-url URL] [--token-ttl 1h] [--token-uses 10]
  skiff-node token create [--ttl 30m] [--uses 1] [--roles agent,router]
  skiff-node join --role nats|controller|health|router|agent --cluster TOKEN --name NAME --address IP [--set KEY=VALUE]…
  skiff-node status
  skiff-node leave --role ROLE
  skiff-node rotate-certs
  skiff-node ca issue --name NAME --ip IP --out DIR      (on the registrar's host: e.g. PostgreSQL's certificate)
  skiff-node credentials create|revoke --role route-registrar|operator --name NAME [--out DIR]
                                                         (on the registrar's host: a NATS user that is not a host)
  skiff-node supervise                                   (runs the units where systemd does not)
Every command takes --root DIR (default /): the file-system root it installs under.`;

export async function main(argv: string[]): Promise<number> {
  const f = flags(argv);
  const layout = nodeLayout(f.get("root") ?? process.env.SKIFF_NODE_ROOT ?? "/");
  const [cmd, sub] = f.positional;
  const need = (n: string): string => {
    const v = f.get(n);
    if (!v || v === "true") throw new NodeError(`--${n} is needed\n\n${usage}`);
    return v;
  };
  switch (cmd) {
    case "init": {
      const token = await init(layout, { name: need("name"), address: need("address"), domain: f.get("domain") ?? "skiff.localhost", databaseUrl: f.get("database-url"), ttl: f.get("token-ttl") ?? "1h", uses: Number(f.get("token-uses") ?? 10) });
      console.log(`cluster created; join other hosts with:\n  skiff-node join --cluster ${token} --role ROLE --name NAME --address IP`);
      return 0;
    }
    case "token":
      if (sub !== "create") break;
      console.log(await createTokenLocal(layout, { ttl: f.get("ttl") ?? "30m", uses: Number(f.get("uses") ?? 1), roles: (f.get("roles") ?? Roles.join(",")).split(",") }));
      return 0;
    case "join": {
      const set: Record<string, string> = {};
      for (const kv of f.all("set")) {
        const i = kv.indexOf("=");
        if (i < 1) throw new NodeError(`--set wants KEY=VALUE, not ${kv}`);
        set[kv.slice(0, i)] = kv.slice(i + 1);
      }
      await join(layout, { role: need("role") as Role, token: need("cluster"), name: need("name"), address: need("address"), set, wait: !f.has("no-wait") });
      return 0;
    }
    case "status":
      return status(layout);
    case "leave":
      await leave(layout, need("role") as Role);
      return 0;
    case "rotate-certs": {
      const { certInfo } = await import("./cluster-ca.ts");
      console.log(`new certificate, serial ${certInfo(await rotateCerts(layout)).serial}`);
      return 0;
    }
    case "credentials": {
      if (sub === "create") {
        const env = await createCredentials(layout, { role: need("role") as CredentialRole, name: need("name"), out: need("out") });
        console.log(`wrote ${env} (NATS URL, user, password, and the client certificate's files)`);
        return 0;
      }
      if (sub === "revoke") {
        const ok = await revokeCredentials(layout, { role: need("role"), name: need("name") });
        console.log(ok ? "revoked" : "no such credentials");
        return ok ? 0 : 1;
      }
      break;
    }
    case "ca": {
      if (sub !== "issue") break;
      const reg = new Registrar(layout.registrarDir);
      const out = need("out");
      const pair = issueCertificate(reg.ca(), need("name"), f.all("ip"), f.all("dns"), Number(f.get("days") ?? 365));
      mkdirSync(out, { recursive: true, mode: 0o700 });
      writeAtomic(resolve(out, "server.key"), pair.keyPem);
      writeAtomic(resolve(out, "server.pem"), pair.certPem, 0o644);
      writeAtomic(resolve(out, "ca.pem"), reg.ca().certPem, 0o644);
      console.log(`wrote ${out}/server.key, server.pem, ca.pem`);
      return 0;
    }
    case "registrar": {
      const dir = process.env.SKIFF_REGISTRAR_DIR ?? layout.registrarDir;
      const reg = new Registrar(dir);
      const server = serveRegistrar(reg, { port: Number(new URL(reg.state().registrarUrl).port) });
      await new Promise<void>((r) => process.once("SIGTERM", () => r()));
      server.stop(true);
      return 0;
    }
    case "nats-sync":
      return natsSync(layout);
    case "supervise": {
      const sup = new Supervisor(layout);
      const server = sup.serve();
      await sup.scan();
      console.log(JSON.stringify({ component: "supervisor", msg: "started", root: layout.root }));
      await new Promise<void>((r) => {
        for (const s of ["SIGTERM", "SIGINT"] as const) process.once(s, () => r());
      });
      await sup.stopAll();
      server.stop();
      return 0;
    }
  }
  console.error(usage);
  return 2;
}

if (import.meta.main) {
  // every file skiff-node writes is the platform's alone unless it says otherwise
  process.umask(0o077);
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(`skiff-node: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}
