// Who may publish and subscribe to what on the bus (issue 27): one NATS user per component, its
// permissions derived from the subject table (subjects.ts), and the nats-server config: one machine's
// lists the users in one `authorization` block, a joined cluster's trusts an operator whose account
// signs each user's JWT with these permissions (nats-jwt.ts). Pure: no file system, no NATS; callers
// write the text where it goes.

import type { NatsOperatorConfig } from "./nats-jwt.ts";
import { deaStartSubject, logsSubject, stagingStartSubject, Subjects, isSubjectToken, taskStartSubject } from "./subjects.ts";

/** The components that connect to the bus, each its own NATS user. */
export const NatsRoles = ["controller", "health", "router", "agent", "route-registrar", "operator"] as const;
export type NatsRole = (typeof NatsRoles)[number];

export interface NatsIdentity {
  role: NatsRole;
  /**
   * the NATS user name: `<role>.<name>` (natsUserName), so that a role's inboxes are one wildcard,
   * `_INBOX.<role>.>`; an agent's carries its id in `agentId` too
   */
  user: string;
  /** agents only: the id in `dea.<id>.start` and `staging.<id>.start` */
  agentId?: string;
}

export interface NatsPermissions {
  publish: string[];
  subscribe: string[];
  /**
   * Replies: a user may publish to the reply subject of a message it received, `max` times within
   * `expires` (nats-server's allow_responses). Staging streams its progress to one reply inbox for as
   * long as a build may take, so an agent's window is the staging timeout and then some.
   */
  responses: { max: number; expires: string };
}

/**
 * Every request's reply inbox starts with `_INBOX.<user>`, so a user may listen on its own replies
 * and on no one else's (nats.js `inboxPrefix`; bus/nats-transport.ts uses the same rule).
 */
export function inboxPrefixFor(user: string): string {
  return `_INBOX.${user}`;
}

/** A user's name: its role, then a name of one subject token (a host's, a credential's). */
export function natsUserName(role: NatsRole, name: string): string {
  if (!isSubjectToken(name)) throw new Error(`a NATS user's name must be one subject token (letters, digits, - and _): ${JSON.stringify(name)}`);
  return `${role}.${name}`;
}

function checkIdentity(identity: NatsIdentity): void {
  const [role, name, more] = identity.user.split(".");
  if (role !== identity.role || !name || !isSubjectToken(name) || more !== undefined) {
    throw new Error(`NATS user ${JSON.stringify(identity.user)} must be named ${identity.role}.<name>: its inbox must lie under _INBOX.${identity.role}`);
  }
}

const every = "*"; // one subject token: any agent, any app
const answers = { max: 1000, expires: "2m" };

/** Subjects that go to every agent (and to nothing that could be forged by one). */
const agentBroadcasts = [
  Subjects.deaStop,
  Subjects.deaUpdate,
  Subjects.deaFindDroplet,
  Subjects.deaLocate,
  Subjects.deaLogsRecent,
  Subjects.healthManagerStart,
  Subjects.routerStart,
  Subjects.taskCancel,
];

/**
 * Whose requests each role answers, by the requester's role: the agents answer the controller's
 * dea.find.droplet, dea.logs.recent and staging.<id>.start; the routers answer router.greet from
 * agents, the controller and the route-registrar; every component answers the operator's
 * vcap.component.discover. The answerer may publish into those roles' inboxes (`_INBOX.<role>.>`)
 * besides allow_responses, because nats-server (2.9.10, Debian's) forgets every allow_responses grant
 * in flight when it reloads its config (an operator's SIGHUP, a certificate rotation): a staging in progress lost its
 * progress replies then (tests: bus/nats-permissions.test.ts). Each request has an inbox of its own,
 * `_INBOX.<role>.<name>.<random NUID>`, so the grant reaches no request the answerer was not sent, and
 * it names roles, not users, so a user's permissions never change when another host joins.
 */
const ANSWERS_TO: Record<NatsRole, NatsRole[]> = {
  agent: ["controller", "operator"],
  router: ["agent", "controller", "route-registrar", "operator"],
  controller: ["operator"],
  health: ["operator"],
  "route-registrar": ["operator"],
  operator: [],
};

/** The inboxes a role may publish replies into: those of the roles it answers. */
export function replyInboxesFor(role: NatsRole): string[] {
  return ANSWERS_TO[role].map((r) => `_INBOX.${r}.>`);
}

/** What each role publishes and subscribes to; replies go through `responses` and the answered roles' inboxes (replyInboxesFor). */
export function permissionsFor(identity: NatsIdentity): NatsPermissions {
  checkIdentity(identity);
  const p = ownPermissions(identity);
  return { ...p, publish: [...p.publish, ...replyInboxesFor(identity.role)] };
}

function ownPermissions(identity: NatsIdentity): NatsPermissions {
  const own = `${inboxPrefixFor(identity.user)}.>`;
  const discover = Subjects.componentDiscover;
  const announce = Subjects.componentAnnounce;
  switch (identity.role) {
    case "controller":
      return {
        // the API, stager and launcher (and the health manager when embedded)
        publish: [
          deaStartSubject(every), Subjects.deaStop, Subjects.deaUpdate, Subjects.deaFindDroplet, Subjects.deaLogsRecent,
          Subjects.deaLocate, Subjects.healthManagerStart, stagingStartSubject(every), logsSubject(every), announce,
          // the console's metrics history finds routers by greeting them (controller/src/metrics)
          Subjects.routerGreet,
          // tasks (issue 17): started on one agent, cancelled wherever they run
          taskStartSubject(every), Subjects.taskCancel,
        ],
        subscribe: [Subjects.deaAdvertise, Subjects.deaShutdown, Subjects.deaHeartbeat, Subjects.dropletExited, logsSubject(every), Subjects.routerStart, discover, own, Subjects.taskState],
        responses: answers,
      };
    case "health":
      return {
        publish: [deaStartSubject(every), Subjects.deaStop, Subjects.deaLocate, Subjects.healthManagerStart, logsSubject(every), announce],
        subscribe: [Subjects.deaAdvertise, Subjects.deaShutdown, Subjects.deaHeartbeat, Subjects.dropletExited, discover, own],
        responses: answers,
      };
    case "router":
      // router.* in; router.start out (its greeting answers are replies)
      return { publish: [Subjects.routerStart, announce], subscribe: ["router.*", discover, own], responses: answers };
    case "agent": {
      const id = identity.agentId;
      if (!id || !isSubjectToken(id)) throw new Error(`an agent's NATS identity needs its id as one subject token, not ${JSON.stringify(id)}`);
      return {
        publish: [
          Subjects.deaAdvertise, Subjects.deaHeartbeat, Subjects.deaShutdown, Subjects.dropletExited,
          Subjects.routerRegister, Subjects.routerUnregister, Subjects.routerGreet, logsSubject(every), announce,
          Subjects.taskState,
        ],
        subscribe: [
          `dea.${id}.*`, stagingStartSubject(id), ...agentBroadcasts, discover, own, taskStartSubject(id),
          // evacuation waits until a replacement of each instance is heard (agent/agent.ts evacuate)
          Subjects.routerRegister, Subjects.deaHeartbeat,
        ],
        // staging streams to one reply inbox until the build ends (SKIFF_AGENT_STAGING_TIMEOUT_S, 900 s)
        responses: { max: 100_000, expires: "20m" },
      };
    }
    case "route-registrar":
      // Cloud Foundry's route-registrar (JSON router.register) for routes to things skiff does not run
      return {
        // announce: as every component that answers vcap.component.discover (skiff's own registrar clients do)
        publish: [Subjects.routerRegister, Subjects.routerUnregister, Subjects.routerGreet, announce],
        subscribe: [Subjects.routerStart, discover, own],
        responses: answers,
      };
    case "operator":
      // tests and debugging only; never handed to a component
      return { publish: [">"], subscribe: [">"], responses: answers };
  }
}

export interface NatsUserEntry {
  identity: NatsIdentity;
  /** the password as nats-server should compare it: a bcrypt hash ($2a$/$2b$) or, on loopback, plain */
  password: string;
}

export interface NatsTlsFiles {
  cert: string;
  key: string;
  ca: string;
}

export interface NatsServerConfigOptions {
  serverName?: string;
  /** host:port; port -1 lets the OS choose (read back from the ports file) */
  listen: string;
  /** an `authorization` block of these users (one machine, written once) … */
  users?: NatsUserEntry[];
  /** … or operator mode (a joined cluster, bus/nats-jwt.ts): users carry their permissions in their JWTs */
  operator?: NatsOperatorConfig;
  /**
   * operator mode: a full resolver keeping account JWTs here, updated by claims updates on the bus
   * (a revocation reaches every NATS host without a reload); without it, a memory resolver
   */
  resolverDir?: string;
  /** client TLS; clients must show a certificate from the same CA (verify) */
  tls?: NatsTlsFiles;
  /** monitoring port host:port */
  http?: string;
  cluster?: { name: string; listen: string; routes: string[]; tls?: NatsTlsFiles };
  maxPayload?: string;
}

const quote = (s: string): string => JSON.stringify(s);
const list = (xs: readonly string[]): string => `[${xs.map(quote).join(", ")}]`;

function tlsBlock(t: NatsTlsFiles, indent: string): string {
  return `${indent}tls { cert_file: ${quote(t.cert)}, key_file: ${quote(t.key)}, ca_file: ${quote(t.ca)}, verify: true, timeout: 5 }`;
}

/** The `authorization` block: every user with its permissions, in one place. */
export function authorizationBlock(users: readonly NatsUserEntry[]): string {
  const seen = new Set<string>();
  const lines = users.map(({ identity, password }) => {
    if (seen.has(identity.user)) throw new Error(`NATS user ${identity.user} is listed twice`);
    seen.add(identity.user);
    if (!password) throw new Error(`NATS user ${identity.user} has no password`);
    const p = permissionsFor(identity);
    return (
      `    { user: ${quote(identity.user)}, password: ${quote(password)}, permissions: {\n` +
      `        publish: { allow: ${list(p.publish)} },\n` +
      `        subscribe: { allow: ${list(p.subscribe)} },\n` +
      `        allow_responses: { max: ${p.responses.max}, expires: ${quote(p.responses.expires)} } } }`
    );
  });
  return `authorization {\n  users = [\n${lines.join("\n")}\n  ]\n}`;
}

/** Operator mode: the operator's JWT, the system account, and the accounts preloaded in its resolver. */
export function operatorBlock(o: NatsOperatorConfig, resolverDir?: string): string {
  const preload = Object.entries(o.accounts).map(([pub, jwt]) => `  ${pub}: ${quote(jwt)}`);
  const resolver = resolverDir ? `resolver: { type: full, dir: ${quote(resolverDir)}, allow_delete: false, interval: "2m" }` : `resolver: MEMORY`;
  return [`operator: ${quote(o.operatorJwt)}`, `system_account: ${o.systemAccount}`, resolver, `resolver_preload: {`, ...preload, `}`].join("\n");
}

/** A whole nats-server config: listen, TLS, users, monitoring, cluster routes. */
export function natsServerConfig(o: NatsServerConfigOptions): string {
  const lines = [`# generated by skiff: one user per component, permissions from bus/nats-permissions.ts`];
  if (o.serverName) lines.push(`server_name: ${quote(o.serverName)}`);
  lines.push(`listen: ${o.listen}`);
  if (o.tls) lines.push(tlsBlock(o.tls, ""));
  if (o.operator) lines.push(operatorBlock(o.operator, o.resolverDir));
  else lines.push(authorizationBlock(o.users ?? []));
  lines.push(`max_payload: ${o.maxPayload ?? "1MB"}`);
  if (o.http) lines.push(`http: ${o.http}`);
  if (o.cluster) {
    const c = o.cluster;
    lines.push(`cluster {`, `  name: ${quote(c.name)}`, `  listen: ${c.listen}`, `  routes: ${list(c.routes)}`);
    if (c.tls) lines.push(tlsBlock(c.tls, "  "));
    lines.push(`}`);
  }
  return lines.join("\n") + "\n";
}
