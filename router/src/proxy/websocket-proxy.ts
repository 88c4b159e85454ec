// WebSocket upgrade proxying. uWS terminates the client's WebSocket (it only hands whole messages to
// JS), so the router opens its own WebSocket to the instance: the same request head and
// Sec-WebSocket-Key, the instance's 101 answered to the client with uWS's upgrade, then messages
// relayed both ways (masked towards the instance), with backpressure from the client side.

import { connect, type Socket } from "node:net";
import type { HttpRequest, HttpResponse, us_socket_context_t, WebSocket, WebSocketBehavior } from "uWebSockets.js";
import type { ProxyContext } from "./proxy-context.ts";
import { RouterErrors, type RouterError } from "./router-errors.ts";
import { encodeClientFrame, FrameParser, FrameProtocolError, Opcode } from "./websocket-frames.ts";

const MAX_MESSAGE = 16 * 1024 * 1024;
const MAX_BUFFERED = 1024 * 1024;
const SKIP = new Set(["connection", "upgrade", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol", "x-forwarded-for", "x-forwarded-proto", "x-request-start", "x-vcap-request-id", "x-cf-applicationid", "x-cf-instanceindex", "x-cf-instanceid", "content-length", "transfer-encoding"]);

interface Tunnel {
  upstream: Socket;
  parser: FrameParser | undefined;
  ws: WebSocket<Tunnel> | undefined;
  /** frames from the instance that arrived with its 101, before open() */
  early: Buffer | undefined;
  closed: boolean;
}

export function websocketBehavior(ctx: ProxyContext): WebSocketBehavior<Tunnel> {
  return {
    maxPayloadLength: MAX_MESSAGE,
    idleTimeout: 0,
    maxBackpressure: MAX_BUFFERED * 4,
    upgrade: (res, req, context) => upgrade(ctx, res, req, context),
    open(ws) {
      const t = ws.getUserData();
      t.ws = ws;
      t.parser = new FrameParser(
        {
          onMessage: (payload, isBinary) => {
            if (t.closed) return;
            ws.send(payload, isBinary);
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
      t.upstream.on("data", (d: Buffer) => feed(t, d));
      if (t.early) feed(t, t.early);
      t.early = undefined;
      t.upstream.on("close", () => {
        if (t.closed) return;
        t.closed = true;
        ws.end(1001, "upstream closed");
      });
      t.upstream.resume();
    },
    message(ws, message, isBinary) {
      const t = ws.getUserData();
      if (!t.closed) t.upstream.write(encodeClientFrame(isBinary ? Opcode.Binary : Opcode.Text, new Uint8Array(message)));
    },
    drain(ws) {
      if (ws.getBufferedAmount() < MAX_BUFFERED) ws.getUserData().upstream.resume();
    },
    close(ws, code, message) {
      const t = ws.getUserData();
      if (t.closed) return;
      t.closed = true;
      t.upstream.end(encodeClientFrame(Opcode.Close, closePayload(code, Buffer.from(message))));
    },
  };
}

function feed(t: Tunnel, data: Buffer): void {
  try {
    t.parser!.push(data);
  } catch (err) {
    if (!(err instanceof FrameProtocolError)) throw err;
    t.closed = true;
    t.upstream.destroy();
    t.ws?.end(1002, "upstream protocol error");
  }
}

function closePayload(code: number, reason: Uint8Array): Buffer {
  if (code === 1005 || code === 1006 || code < 1000) return Buffer.alloc(0);
  const b = Buffer.alloc(2 + Math.min(reason.length, 123));
  b.writeUInt16BE(code, 0);
  Buffer.from(reason).copy(b, 2, 0, 123);
  return b;
}

function upgrade(ctx: ProxyContext, res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
  const host = req.getHeader("host");
  const query = req.getQuery();
  const target = query ? `${req.getUrl()}?${query}` : req.getUrl();
  const key = req.getHeader("sec-websocket-key");
  const protocol = req.getHeader("sec-websocket-protocol");
  let head = `GET ${target} HTTP/1.1\r\n`;
  let forwardedFor = "";
  req.forEach((k, v) => {
    if (k === "x-forwarded-for") forwardedFor = v;
    if (!SKIP.has(k)) head += `${k}: ${v}\r\n`;
  });
  const remote = Buffer.from(res.getRemoteAddressAsText()).toString();
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
    upstream?.destroy();
  });
  const fail = (err: RouterError) => {
    if (aborted) return;
    aborted = true;
    res.cork(() => res.writeStatus(err.status).writeHeader("X-Cf-Routererror", err.code).end(err.body(host), true));
    ctx.metrics.recordRequest(Number(err.status.slice(0, 3)), undefined, 0);
  };
  if (!host) return fail(RouterErrors.emptyHost);
  const route = ctx.registry.lookup(host, target);
  if (!route) return fail(RouterErrors.unknownRoute);
  const endpoint = route.pick({ now: ctx.now });
  if (!endpoint) return fail(RouterErrors.noEndpoints);
  head +=
    `Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n` +
    (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : "") +
    `X-Forwarded-For: ${forwardedFor ? `${forwardedFor}, ${remote}` : remote}\r\nX-Forwarded-Proto: ${ctx.scheme === "https" ? "wss" : "ws"}\r\n` +
    `X-Request-Start: ${Date.now()}\r\n${endpoint.headerBytes}\r\n`;
  let upstream: Socket | undefined = connect({ host: endpoint.host, port: endpoint.port, noDelay: true });
  const socket = upstream;
  let response = Buffer.alloc(0);
  const onData = (d: Buffer) => {
    response = Buffer.concat([response, d]);
    const end = response.indexOf("\r\n\r\n");
    if (end < 0) {
      if (response.length > 64 * 1024) socket.destroy();
      return;
    }
    socket.off("data", onData);
    socket.pause();
    const text = response.toString("latin1", 0, end);
    const status = Number(text.slice(9, 12));
    if (aborted) return void socket.destroy();
    if (status !== 101) {
      socket.destroy();
      return fail({ ...RouterErrors.endpointFailure, status: text.slice(9, text.indexOf("\r\n")) || "502 Bad Gateway" });
    }
    const accepted = /\r\nsec-websocket-protocol:[ \t]*([^\r]*)/i.exec(text)?.[1] ?? "";
    const early = end + 4 < response.length ? Buffer.from(response.subarray(end + 4)) : undefined;
    aborted = true; // the response is ours no more
    socket.removeAllListeners("close");
    socket.removeAllListeners("error");
    socket.on("error", () => {});
    // The socket stays paused until open() has its listeners on.
    res.cork(() => res.upgrade<Tunnel>({ upstream: socket, parser: undefined, ws: undefined, early, closed: false }, key, accepted, "", context));
    ctx.metrics.recordRequest(101, route.key, 0);
  };
  socket.on("data", onData);
  socket.on("connect", () => socket.write(head));
  socket.on("error", () => {});
  socket.on("close", () => {
    upstream = undefined;
    if (!aborted) {
      ctx.metrics.upstreamErrors++;
      route.markFailed(endpoint, Date.now());
      fail(RouterErrors.endpointFailure);
    }
  });
}
