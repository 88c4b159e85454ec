// The production Transport: a nats.js connection that reconnects forever with jitter and drains on
// close. Subscriptions use callbacks so a message is handled in the tick it arrives.

import { connect, createInbox, type NatsConnection } from "nats";
import type { BusStatus, Transport } from "./bus.ts";
import type { Logger } from "./log.ts";

export interface NatsConfig {
  /** e.g. ["nats://127.0.0.1:4222"]; several for a cluster */
  servers: string[];
  /** the client name nats-server shows, e.g. "router-3f2a" */
  name: string;
  user?: string;
  pass?: string;
  token?: string;
}

export class BusConnectError extends Error {
  override name = "BusConnectError";
}

export async function connectNats(config: NatsConfig, log: Logger): Promise<Transport> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: config.servers,
      name: config.name,
      user: config.user,
      pass: config.pass,
      token: config.token,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 250,
      waitOnFirstConnect: true,
      pingInterval: 10_000,
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
  (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        log.warn("disconnected from NATS", { server: String(s.data) });
        emit({ type: "disconnect" });
      } else if (s.type === "reconnect") {
        log.info("reconnected to NATS", { server: String(s.data) });
        emit({ type: "reconnect" });
      } else if (s.type === "error") {
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
          if (err) return log.warn("subscription error", { subject, error: err });
          // nats-server's "no responders" status (503, empty body) answers a request nobody
          // subscribes to: no reply at all, not an invalid one.
          if (msg.headers?.code === 503 && msg.data.length === 0) return;
          onMessage(msg.data, msg.subject, msg.reply || undefined);
        },
      });
      return () => sub.unsubscribe();
    },
    inbox: () => createInbox(),
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
