// The production Transport: a nats.js connection that reconnects forever with jitter and drains on
// close. Subscriptions use callbacks so a message is handled in the tick it arrives.

import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { readFileSync } from "node:fs";
import { connect, createInbox, credsAuthenticator, type NatsConnection, type TlsOptions } from "nats";
import type { BusStatus, Transport } from "./bus.ts";
import type { Logger } from "./log.ts";
import { inboxPrefixFor } from "./nats-permissions.ts";

export interface NatsConfig {
  /** e.g. ["nats://127.0.0.1:4222"]; several for a cluster */
  servers: string[];
  /** the client name nats-server shows, e.g. "router-3f2a" */
  name: string;
  /** the user's name (`<role>.<name>`): its reply inboxes lie under `_INBOX.<user>` */
  user?: string;
  pass?: string;
  /**
   * a NATS .creds file (a user JWT and its seed, bus/nats-jwt.ts), a joined cluster's way in instead
   * of a password; read again at each (re)connect, so new credentials are taken up without a restart
   */
  credsFile?: string;
  token?: string;
  /**
   * TLS to nats-server (issue 27): the cluster CA that signs the servers' certificates, and this host's
   * certificate and key (servers with `verify: true` want one). Files are read again at each
   * (re)connect, so a rotated certificate is taken up without a restart.
   */
  tls?: NatsTlsConfig;
}

export interface NatsTlsConfig {
  caFile: string;
  certFile?: string;
  keyFile?: string;
}

/** SKIFF_TLS_CA, SKIFF_TLS_CERT, SKIFF_TLS_KEY: the NATS client's TLS, or undefined when no CA is set. */
export function natsTlsFromEnv(env: Record<string, string | undefined>): NatsTlsConfig | undefined {
  if (!env.SKIFF_TLS_CA) return undefined;
  return { caFile: env.SKIFF_TLS_CA, certFile: env.SKIFF_TLS_CERT || undefined, keyFile: env.SKIFF_TLS_KEY || undefined };
}

/**
 * nats.js sends no SNI name for a server given by IP address, so Node would check the certificate against
 * "localhost". The certificate must instead name one of the configured servers (by IP or DNS name).
 */
function serverIdentityCheck(servers: string[]): (host: string, cert: PeerCertificate) => Error | undefined {
  const names = servers.map((s) => new URL(s.includes("://") ? s : `nats://${s}`).hostname.replace(/^\[|\]$/g, ""));
  return (_host, cert) => {
    for (const name of names) if (checkServerIdentity(name, cert) === undefined) return undefined;
    return new Error(`the NATS server's certificate names none of ${names.join(", ")}`);
  };
}

/** How a component proves itself to NATS: the fields of NatsConfig its environment gives. */
export type NatsCredentials = Pick<NatsConfig, "user" | "pass" | "credsFile" | "tls">;

/** SKIFF_NATS_USER with SKIFF_NATS_PASS (one machine) or SKIFF_NATS_CREDS (a joined cluster), and SKIFF_TLS_*. */
export function natsCredentialsFromEnv(env: Record<string, string | undefined>): NatsCredentials {
  return { user: env.SKIFF_NATS_USER || undefined, pass: env.SKIFF_NATS_PASS || undefined, credsFile: env.SKIFF_NATS_CREDS || undefined, tls: natsTlsFromEnv(env) };
}

export class BusConnectError extends Error {
  override name = "BusConnectError";
}

export async function connectNats(config: NatsConfig, log: Logger): Promise<Transport> {
  let nc: NatsConnection;
  // with a user, replies come to _INBOX.<user>.…: the one inbox subject its NATS permissions let it read
  const inboxPrefix = config.user ? inboxPrefixFor(config.user) : "_INBOX";
  try {
    nc = await connect({
      servers: config.servers,
      name: config.name,
      ...(config.credsFile ? { authenticator: credsAuthenticator(() => readFileSync(config.credsFile!)) } : { user: config.user, pass: config.pass }),
      token: config.token,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 250,
      waitOnFirstConnect: true,
      pingInterval: 10_000,
      inboxPrefix,
      // checkServerIdentity goes through to Node's tls.connect (nats.js's TlsOptions does not list it)
      ...(config.tls ? { tls: { caFile: config.tls.caFile, certFile: config.tls.certFile, keyFile: config.tls.keyFile, checkServerIdentity: serverIdentityCheck(config.servers) } as TlsOptions } : {}),
    });
  } catch (err) {
    throw new BusConnectError(`cannot connect to NATS at ${config.servers.join(",")}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const listeners: ((s: BusStatus) => void)[] = [];
  const emit = (s: BusStatus) => {
    for (const l of listeners) {
      try {
        l(s);
      } catch (err) {
        log.error("bus status listener failed", { error: err });
      }
    }
  };
  // A publish or subscribe outside this user's permissions: nats-server refuses and logs it
  // ("Publish Violation"); here it is counted and logged too, never thrown.
  let denied = 0;
  const deny = (what: string, subject?: string) => {
    denied++;
    log.warn("NATS refused this user a publish or subscribe (permissions)", { what, subject, user: config.user, denied_total: denied });
  };
  (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        log.warn("disconnected from NATS", { server: String(s.data) });
        emit({ type: "disconnect" });
      } else if (s.type === "reconnect") {
        log.info("reconnected to NATS", { server: String(s.data) });
        emit({ type: "reconnect" });
      } else if (s.type === "error") {
        if (String(s.data) === "PERMISSIONS_VIOLATION") deny("publish");
        emit({ type: "error", error: new Error(String(s.data)) });
      }
    }
  })().catch(() => {});

  return {
    publish(subject, data, reply) {
      try {
        nc.publish(subject, data, reply ? { reply } : undefined);
      } catch (err) {
        // A closed or draining connection refuses publishes; the caller's soft state re-sends later.
        log.warn("publish failed", { subject, error: err });
      }
    },
    subscribe(subject, onMessage, queue) {
      const sub = nc.subscribe(subject, {
        queue,
        callback: (err, msg) => {
          if (err) {
            if (/permissions violation/i.test(err.message)) return deny("subscribe", subject);
            return log.warn("subscription error", { subject, error: err });
          }
          // nats-server's "no responders" status (503, empty body) answers a request nobody
          // subscribes to: no reply at all, not an invalid one.
          if (msg.headers?.code === 503 && msg.data.length === 0) return;
          onMessage(msg.data, msg.subject, msg.reply || undefined);
        },
      });
      return () => sub.unsubscribe();
    },
    inbox: () => createInbox(inboxPrefix),
    flush: () => nc.flush(),
    close: async () => {
      if (nc.isClosed()) return;
      try {
        await nc.drain();
      } catch {
        await nc.close();
      }
    },
    onStatus: (l) => void listeners.push(l),
  };
}
