// WebSocket proxying. uWS terminates the client's WebSocket (it only hands whole messages to JS), so
// the router opens its own WebSocket to the instance (websocket-upgrade.ts) and relays messages both
// ways (masked towards the instance). Buffered bytes are bounded both ways: towards the client the
// instance socket is paused while uWS holds more than MAX_BUFFERED; towards the instance the client
// cannot be paused (uWS 20.30 has no ws.pause), so a tunnel whose instance stops reading is closed
// once MAX_TOWARD_INSTANCE bytes wait for it.

import type { WebSocket, WebSocketBehavior } from "uWebSockets.js";
import type { Socket } from "node:net";
import type { Endpoint } from "../route/endpoint.ts";
import type { ProxyContext } from "./proxy-context.ts";
import { RequestIds } from "./request-id.ts";
import { encodeClientFrame, FrameParser, FrameProtocolError, Opcode } from "./websocket-frames.ts";
import { proxyUpgrade } from "./websocket-upgrade.ts";

const MAX_MESSAGE = 16 * 1024 * 1024;
/** uWS's buffer towards the client past which the instance socket is paused */
const MAX_BUFFERED = 1024 * 1024;
/** bytes waiting for an instance that does not read: one largest message and some slack, then the tunnel closes */
export const MAX_TOWARD_INSTANCE = MAX_MESSAGE + 4 * MAX_BUFFERED;
/** uWS drops a send past this (send() returns 2): only reachable when the pause above failed, and then the tunnel closes */
const MAX_BACKPRESSURE = MAX_MESSAGE + 4 * MAX_BUFFERED;
const SEND_DROPPED = 2;

interface Tunnel {
  upstream: Socket;
  endpoint: Endpoint;
  parser: FrameParser | undefined;
  ws: WebSocket<Tunnel> | undefined;
  /** frames from the instance that arrived with its 101, before open() */
  early: Buffer | undefined;
  closed: boolean;
  /** the endpoint slot (connection cap, least-connection) is given back once */
  released: boolean;
}

export function websocketBehavior(ctx: ProxyContext): WebSocketBehavior<Tunnel> {
  const ids = new RequestIds();
  const release = (t: Tunnel) => {
    if (t.released) return;
    t.released = true;
    t.endpoint.inFlight--;
  };
  /** ends both sides: the instance socket destroyed, the client told why */
  const abort = (t: Tunnel, code: number, reason: string) => {
    t.closed = true;
    t.upstream.destroy();
    release(t);
    t.ws?.end(code, reason);
  };
  return {
    maxPayloadLength: MAX_MESSAGE,
    idleTimeout: 0,
    maxBackpressure: MAX_BACKPRESSURE,
    upgrade: (res, req, context) =>
      proxyUpgrade(ctx, ids, res, req, context, (res, up, key, protocol, context) =>
        res.cork(() => res.upgrade<Tunnel>({ upstream: up.upstream, endpoint: up.endpoint, parser: undefined, ws: undefined, early: up.early, closed: false, released: false }, key, protocol, "", context)),
      ),
    open(ws) {
      const t = ws.getUserData();
      t.ws = ws;
      t.parser = new FrameParser(
        {
          onMessage: (payload, isBinary) => {
            if (t.closed) return;
            if (ws.send(payload, isBinary) === SEND_DROPPED) return abort(t, 1011, "client too slow");
            if (ws.getBufferedAmount() > MAX_BUFFERED) t.upstream.pause();
          },
          onPing: (payload) => t.upstream.write(encodeClientFrame(Opcode.Pong, payload)),
          onClose: (code, reason) => {
            if (t.closed) return;
            t.closed = true;
            t.upstream.end(encodeClientFrame(Opcode.Close, closePayload(code, reason)));
            ws.end(code === 1005 ? 1000 : code, reason);
          },
        },
        MAX_MESSAGE,
      );
      t.upstream.on("data", (d: Buffer) => feed(t, d, abort));
      if (t.early) feed(t, t.early, abort);
      t.early = undefined;
      t.upstream.on("close", () => {
        release(t);
        if (t.closed) return;
        t.closed = true;
        ws.end(1001, "upstream closed");
      });
      t.upstream.resume();
    },
    message(ws, message, isBinary) {
      const t = ws.getUserData();
      if (t.closed) return;
      t.upstream.write(encodeClientFrame(isBinary ? Opcode.Binary : Opcode.Text, new Uint8Array(message)));
      if (t.upstream.writableLength > MAX_TOWARD_INSTANCE) {
        ctx.metrics.upstreamErrors++;
        abort(t, 1011, "instance not reading");
      }
    },
    drain(ws) {
      if (ws.getBufferedAmount() < MAX_BUFFERED) ws.getUserData().upstream.resume();
    },
    close(ws, code, message) {
      const t = ws.getUserData();
      t.ws = undefined;
      release(t);
      if (t.closed) return;
      t.closed = true;
      t.upstream.end(encodeClientFrame(Opcode.Close, closePayload(code, Buffer.from(message))));
    },
  };
}

function feed(t: Tunnel, data: Buffer, abort: (t: Tunnel, code: number, reason: string) => void): void {
  try {
    t.parser!.push(data);
  } catch (err) {
    if (!(err instanceof FrameProtocolError)) throw err;
    abort(t, 1002, "upstream protocol error");
  }
}

function closePayload(code: number, reason: Uint8Array): Buffer {
  if (code === 1005 || code === 1006 || code < 1000) return Buffer.alloc(0);
  const b = Buffer.alloc(2 + Math.min(reason.length, 123));
  b.writeUInt16BE(code, 0);
  Buffer.from(reason).copy(b, 2, 0, 123);
  return b;
}
