// A TCP relay between an agent and nats-server, so a test can cut the agent's NATS connection
// (and only the agent's) while its own bus client stays connected and hears everything.

import type { Socket } from "bun";

export interface TcpProxy {
  url: string;
  /** Drops every relayed connection; new ones are accepted again at once. */
  cut(): void;
  stop(): void;
}

export function startTcpProxy(targetPort: number): TcpProxy {
  const pairs = new Set<{ client: Socket<{ upstream?: Socket<unknown>; pending: Uint8Array[] }>; upstream?: Socket<unknown> }>();
  const server = Bun.listen<{ upstream?: Socket<unknown>; pending: Uint8Array[] }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        client.data = { pending: [] };
        const pair: { client: typeof client; upstream?: Socket<unknown> } = { client };
        pairs.add(pair);
        void Bun.connect({
          hostname: "127.0.0.1",
          port: targetPort,
          socket: {
            open(up) {
              pair.upstream = up;
              client.data.upstream = up;
              for (const b of client.data.pending) up.write(b);
              client.data.pending = [];
            },
            data(_up, bytes) {
              client.write(bytes);
            },
            close() {
              client.end();
              pairs.delete(pair);
            },
            error() {
              client.end();
            },
          },
        }).catch(() => client.end());
      },
      data(client, bytes) {
        if (client.data.upstream) client.data.upstream.write(bytes);
        else client.data.pending.push(new Uint8Array(bytes));
      },
      close(client) {
        client.data.upstream?.end();
      },
      error() {},
    },
  });
  return {
    url: `nats://127.0.0.1:${server.port}`,
    cut() {
      for (const p of [...pairs]) {
        p.client.terminate();
        p.upstream?.terminate();
      }
      pairs.clear();
    },
    stop() {
      this.cut();
      server.stop(true);
    },
  };
}
