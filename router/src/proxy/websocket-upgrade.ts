// One WebSocket upgrade request, up to the instance's 101: the request head copied at once, an
// endpoint picked (counted against its connection cap for as long as the tunnel lives), connected
// within the connect timeout and retried on another endpoint while no byte reached one, answered
// within the response timeout. On 101 the client's side is upgraded with uWS and a Tunnel takes over.
// The forwarded headers follow the request path's rules (stages.ts, stages 1 and 6).

import { connect, type Socket } from "node:net";
import type { HttpRequest, HttpResponse, us_socket_context_t } from "uWebSockets.js";
import type { Endpoint } from "../route/endpoint.ts";
import type { RoutePool } from "../route/route-pool.ts";
import type { ProxyContext } from "./proxy-context.ts";
import { peerBytes, peerText } from "./remote-address.ts";
import type { RequestIds } from "./request-id.ts";
import { RouterErrors, type RouterError } from "./router-errors.ts";

/** the instance's answer head, at most */
const MAX_RESPONSE_HEAD = 64 * 1024;
/** client headers never forwarded as sent: hop-by-hop, WebSocket handshake (re-made), or ours to set */
const SKIP = new Set(["connection", "upgrade", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol", "x-forwarded-for", "x-forwarded-proto", "x-request-start", "x-vcap-request-id", "x-cf-applicationid", "x-cf-instanceindex", "x-cf-instanceid", "content-length", "transfer-encoding"]);
/** what a client may claim about the hops before us: forwarded only from a trusted front end (issue 24) */
const SKIP_UNTRUSTED = new Set([...SKIP, "forwarded", "x-forwarded-host", "x-forwarded-port", "x-real-ip"]);

/** What the Tunnel gets: the connected instance socket and the endpoint slot it must give back. */
export interface UpgradedTunnel {
  upstream: Socket;
  endpoint: Endpoint;
  /** frames from the instance that arrived with its 101 */
  early: Buffer | undefined;
}

export type OnUpgraded = (res: HttpResponse, tunnel: UpgradedTunnel, key: string, protocol: string, context: us_socket_context_t) => void;

export function proxyUpgrade(ctx: ProxyContext, ids: RequestIds, res: HttpResponse, req: HttpRequest, context: us_socket_context_t, onUpgraded: OnUpgraded): void {
  new WebSocketUpgrade(ctx, ids, res, req, context, onUpgraded).start();
}

class WebSocketUpgrade {
  private readonly host: string;
  private readonly target: string;
  private readonly key: string;
  private readonly protocol: string;
  /** request line and headers, without the per-endpoint ones and the final CRLF */
  private head: string;
  private forwardedFor = "";
  /** X-Forwarded-Proto as a trusted front end sent it ("": the scheme the peer spoke) */
  private forwardedProto = "";
  private readonly remote: string;
  private route: RoutePool | undefined = undefined;
  private endpoint: Endpoint | undefined = undefined;
  private holdsEndpoint = false;
  private tried: Endpoint[] = [];
  private attempts = 0;
  private socket: Socket | undefined = undefined;
  private connected = false;
  private timer: ReturnType<typeof setTimeout> | undefined = undefined;
  private response: Buffer = Buffer.alloc(0);
  /** the client's response is ours no more: answered, upgraded or aborted */
  private done = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly ids: RequestIds,
    private readonly res: HttpResponse,
    req: HttpRequest,
    private readonly context: us_socket_context_t,
    private readonly onUpgraded: OnUpgraded,
  ) {
    // HttpRequest lives only during this call: copy everything now.
    const peer = peerBytes(res);
    this.remote = peerText(peer, res);
    const trusted = ctx.trustedProxies.size > 0 && ctx.trustedProxies.containsAddress(peer);
    const skip = trusted ? SKIP : SKIP_UNTRUSTED;
    this.host = req.getHeader("host");
    const query = req.getQuery();
    this.target = query ? `${req.getUrl()}?${query}` : req.getUrl();
    this.key = req.getHeader("sec-websocket-key");
    this.protocol = req.getHeader("sec-websocket-protocol");
    let head = `GET ${this.target} HTTP/1.1\r\n`;
    req.forEach((k, v) => {
      if (k === "x-forwarded-for") this.forwardedFor = v;
      else if (k === "x-forwarded-proto" && trusted) this.forwardedProto = v;
      if (!skip.has(k)) head += `${k}: ${v}\r\n`;
    });
    this.head = head;
    res.onAborted(() => this.onAborted());
  }

  start(): void {
    const { ctx } = this;
    if (!this.host) return this.fail(RouterErrors.emptyHost);
    this.route = ctx.table.lookup(this.host, this.target);
    if (!this.route) return this.fail(RouterErrors.unknownRoute);
    const remote = this.remote;
    // X-Forwarded-Proto says http or https, as on every other request (gorouter's too): apps compare it
    // with "https" to decide on redirects and Secure cookies.
    this.head +=
      `Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${this.key}\r\n` +
      (this.protocol ? `Sec-WebSocket-Protocol: ${this.protocol}\r\n` : "") +
      `X-Forwarded-For: ${this.forwardedFor ? `${this.forwardedFor}, ${remote}` : remote}\r\nX-Forwarded-Proto: ${this.forwardedProto || ctx.scheme}\r\n` +
      `X-Request-Start: ${Date.now()}\r\nX-Vcap-Request-Id: ${this.ids.next()}\r\n`;
    this.attempt();
  }

  private attempt(): void {
    const route = this.route!;
    const endpoint = route.pick({ now: Date.now(), exclude: this.tried });
    if (endpoint === undefined) return this.fail(this.attempts === 0 ? RouterErrors.noEndpoints : RouterErrors.endpointFailure);
    this.attempts++;
    this.endpoint = endpoint;
    this.holdsEndpoint = true;
    endpoint.inFlight++; // a tunnel is a connection to the instance: it counts against the cap while it lives
    this.connected = false;
    this.response = Buffer.alloc(0);
    const socket = connect({ host: endpoint.host, port: endpoint.port, noDelay: true });
    this.socket = socket;
    this.timer = setTimeout(() => socket.destroy(new Error("connect timeout")), this.ctx.limits.connectTimeoutMs);
    socket.on("connect", () => this.onConnect(socket));
    socket.on("data", this.onData);
    socket.on("error", () => {});
    socket.on("close", () => this.onClose(socket));
  }

  private onConnect(socket: Socket): void {
    if (socket !== this.socket) return;
    clearTimeout(this.timer);
    this.connected = true;
    socket.write(this.head + this.endpoint!.headerBytes + "\r\n");
    this.timer = setTimeout(() => this.onResponseTimeout(socket), this.ctx.limits.responseTimeoutMs);
  }

  private onResponseTimeout(socket: Socket): void {
    if (socket !== this.socket || this.done) return;
    this.dropSocket();
    this.fail(RouterErrors.endpointTimeout);
  }

  private readonly onData = (d: Buffer): void => {
    const socket = this.socket!;
    const response = (this.response = Buffer.concat([this.response, d]));
    const end = response.indexOf("\r\n\r\n");
    if (end < 0) {
      if (response.length > MAX_RESPONSE_HEAD) socket.destroy(new Error("response head too large"));
      return;
    }
    clearTimeout(this.timer);
    socket.off("data", this.onData);
    socket.pause(); // until the Tunnel has its listeners on
    if (this.done) return void this.dropSocket();
    const text = response.toString("latin1", 0, end);
    const status = Number(text.slice(9, 12));
    if (status !== 101) {
      this.dropSocket();
      return this.fail({ ...RouterErrors.endpointFailure, status: text.slice(9, text.indexOf("\r\n")) || "502 Bad Gateway" });
    }
    const accepted = /\r\nsec-websocket-protocol:[ \t]*([^\r]*)/i.exec(text)?.[1] ?? "";
    const early = end + 4 < response.length ? Buffer.from(response.subarray(end + 4)) : undefined;
    this.done = true;
    this.holdsEndpoint = false; // the Tunnel gives the endpoint slot back when it ends
    socket.removeAllListeners("close");
    socket.removeAllListeners("error");
    socket.on("error", () => {});
    const route = this.route!;
    this.ctx.metrics.recordRequest(101, route.inTable ? route.key : undefined, 0);
    this.onUpgraded(this.res, { upstream: socket, endpoint: this.endpoint!, early }, this.key, accepted, this.context);
  };

  private onClose(socket: Socket): void {
    if (socket !== this.socket) return;
    clearTimeout(this.timer);
    this.socket = undefined;
    this.releaseEndpoint();
    if (this.done) return;
    const endpoint = this.endpoint!;
    this.ctx.metrics.upstreamErrors++;
    if (!this.connected) {
      // refused, unreachable or not accepted in time: no byte reached it, so another endpoint may take it
      this.route!.markFailed(endpoint, Date.now());
      this.tried.push(endpoint);
      if (this.attempts < this.ctx.limits.maxAttempts) {
        this.ctx.metrics.retries++;
        return this.attempt();
      }
    }
    this.fail(RouterErrors.endpointFailure);
  }

  private onAborted(): void {
    this.done = true;
    clearTimeout(this.timer);
    this.dropSocket();
  }

  private dropSocket(): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = undefined;
    clearTimeout(this.timer);
    this.releaseEndpoint();
    socket.destroy();
  }

  private releaseEndpoint(): void {
    if (!this.holdsEndpoint) return;
    this.holdsEndpoint = false;
    this.endpoint!.inFlight--;
  }

  private fail(err: RouterError): void {
    if (this.done) return;
    this.done = true;
    const { res } = this;
    res.cork(() => res.writeStatus(err.status).writeHeader("X-Cf-Routererror", err.code).end(err.body(this.host), true));
    this.ctx.metrics.recordRequest(Number(err.status.slice(0, 3)), undefined, 0);
  }
}
