// uWebSockets.js as the router uses it, in the main thread and in every worker: the native build
// only (its JS fallback and Bun are refused), and listening on a port, exclusively (the main thread's
// probe and the status port) or shared with the other workers (SO_REUSEPORT, uSockets' default).

import { createRequire } from "node:module";
import type * as UWS from "uWebSockets.js";

export type Uws = typeof UWS;

export function loadNativeUws(): Uws {
  if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" || !process.versions.node)
    throw new Error("the router must run under Node (uWebSockets.js falls back to a slow JS implementation under Bun): node router/dist/router.mjs");
  if (process.env.UWS_USE_FALLBACK) throw new Error("UWS_USE_FALLBACK is set: refusing to run on uWebSockets.js's JS fallback");
  const uws = createRequire(import.meta.url)("uWebSockets.js") as Uws & { getParts?: unknown; H3App?: unknown };
  // The JS fallback exports App but none of the native-only functions.
  if (typeof uws.App !== "function" || typeof uws.getParts !== "function" || typeof uws.us_socket_local_port !== "function")
    throw new Error(`uWebSockets.js fell back to its JS implementation (no native binary for Node ${process.version} ABI ${process.versions.modules}): refusing to start`);
  return uws;
}

/** uSockets' listen options: the default sets SO_REUSEPORT (workers share a port), EXCLUSIVE does not,
 * so a second process on the port fails instead of silently taking a share of its connections. The
 * .d.ts lacks the (host, port, options, cb) overload. */
export const ListenOptions = { sharedPort: 0, exclusivePort: 1 } as const;
type ListenWithOptions = (host: string, port: number, options: number, cb: (socket: UWS.us_listen_socket | false) => void) => unknown;

export class ListenError extends Error {
  override name = "ListenError";
}

/** Listens on `port` (0: any free port) and resolves with the socket and the port actually bound. */
export function listen(uws: Uws, app: UWS.TemplatedApp, port: number, options: number, what: string, envName: string): Promise<{ socket: UWS.us_listen_socket; port: number }> {
  return new Promise((resolve, reject) =>
    (app.listen as unknown as ListenWithOptions).call(app, "0.0.0.0", port, options, (socket) => {
      if (socket) resolve({ socket, port: uws.us_socket_local_port(socket as unknown as UWS.us_socket) });
      else reject(new ListenError(`cannot listen on port ${port} (${what}): it is in use by another process; stop that process or set ${envName} to a free port (0 picks one)`));
    }),
  );
}
