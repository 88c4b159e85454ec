// A keep-alive client connection to the router for the suites that need to know which connection a
// response came on (drain, workers): one request at a time, responses framed by Content-Length, and a
// record of how the connection ended.

import { connect, type Socket } from "node:net";
import { eventually } from "../support/ports.ts";

export type KeepAliveClient = ReturnType<typeof keepAliveClient>;

/** Opens a connection to 127.0.0.1:`port`; `responseMs` is how long `get` waits for a response by default. */
export function keepAliveClient(port: number, responseMs = 10_000) {
  const socket: Socket = connect(port, "127.0.0.1");
  const state = { text: "", ended: false, error: undefined as string | undefined, closed: false };
  socket.setNoDelay(true);
  socket.on("data", (d) => (state.text += d.toString("latin1")));
  socket.on("end", () => (state.ended = true)); // a FIN from the router
  socket.on("error", (err: NodeJS.ErrnoException) => (state.error = err.code ?? err.message));
  socket.on("close", () => (state.closed = true));
  return {
    socket,
    state,
    /** sends a GET; resolves with the response once its body is in, or "closed" if the connection closes first */
    get(host: string, timeoutMs = responseMs): Promise<string> {
      const from = state.text.length;
      socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      return eventually(
        () => {
          const t = state.text.slice(from);
          const end = t.indexOf("\r\n\r\n");
          if (end >= 0) {
            const len = Number(/content-length: (\d+)/i.exec(t.slice(0, end))?.[1] ?? 0);
            if (t.length >= end + 4 + len) return t;
          }
          return state.closed ? "closed" : undefined;
        },
        timeoutMs,
        `a response from ${host}`,
      );
    },
  };
}
