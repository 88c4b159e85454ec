// One proxied request, from the client's uWS HttpResponse to an upstream connection and back: the
// one typed object that holds its state (no fields stuck on `res`). It follows uWS's rules: every
// write after an await is corked, backpressure pauses the other side, finishing is idempotent, and
// nothing touches `res` after onAborted.

import type { HttpResponse } from "uWebSockets.js";
import type { Endpoint } from "../route/endpoint.ts";
import type { RoutePool } from "../route/route-pool.ts";
import type { ProxyContext } from "./proxy-context.ts";
import { RouterErrors, type RouterError } from "./router-errors.ts";
import type { ResponseHead, ResponseSink } from "./response-parser.ts";
import type { UpstreamConnection, UpstreamUser } from "./upstream-pool.ts";

export const BodyMode = { None: 0, Length: 1, Chunked: 2 } as const;
export type BodyMode = (typeof BodyMode)[keyof typeof BodyMode];

const CRLF = "\r\n";
const LAST_CHUNK = "0\r\n\r\n";
/** a request that cannot be retried only reuses a socket idle for at most this long */
const SAFE_IDLE_AGE_MS = 1_000;
/** queued request body bytes (while connecting) before the client is paused */
const MAX_QUEUED_BODY = 64 * 1024;

export class Exchange implements UpstreamUser, ResponseSink {
  // --- the request, copied from HttpRequest at once ---
  method = "";
  /** path and query, as received */
  target = "";
  host = "";
  /** request line and forwarded headers, without the per-endpoint headers and the final CRLF */
  head = "";
  bodyMode: BodyMode = BodyMode.None;
  contentLength = 0;
  clientClose = false;
  /**
   * The router closes the connection after its answer (issue 19): the request's framing is one uWS
   * 20.30 may have read differently from the client (a chunked body, whose trailer uWS reads as the
   * next request; a body method with no framing header, which a header line with an empty name can
   * hide), so nothing read after it on this connection is served.
   */
  closeAfter = false;
  stickyInstanceId: string | undefined = undefined;
  remoteAddress = "";
  forwardedFor = "";
  forwardedProto = "";
  userAgent = "";
  referer = "";
  requestId = "";
  readonly startedAt: number;
  readonly startedAtMs: number;

  // --- routing ---
  route: RoutePool | undefined = undefined;
  endpoint: Endpoint | undefined = undefined;
  private holdsEndpoint = false;
  private tried: Endpoint[] | undefined = undefined;
  attempts = 0;
  private conn: UpstreamConnection | undefined = undefined;
  private connectStartedAt = 0;
  private requestSentAt = 0;
  private requestWritten = false;

  // --- request body ---
  private queued: Buffer[] | undefined = undefined;
  private queuedBytes = 0;
  private bodyBytes = 0;
  private bodyEnded = true;
  private clientPaused = false;

  // --- response ---
  status = 0;
  routerError = "";
  private responseLength = -1;
  private headSent = false;
  private upstreamDone = false;
  private stalled: Buffer | undefined = undefined;
  private stalledOffset = 0;
  private writableHooked = false;
  responseBytes = 0;
  aborted = false;
  finished = false;
  prevActive: Exchange | undefined = undefined;
  nextActive: Exchange | undefined = undefined;

  constructor(
    private readonly ctx: ProxyContext,
    readonly res: HttpResponse,
  ) {
    this.startedAt = performance.now();
    this.startedAtMs = Date.now();
  }

  /** request body bytes received (the access log's bytes_received) */
  get requestBytes(): number {
    return this.bodyBytes;
  }

  get isHead(): boolean {
    return this.method === "HEAD";
  }

  // ---------------------------------------------------------------- request body (from uWS)

  /** Starts reading the request body; called in the handler, before any await. */
  readBody(): void {
    this.bodyEnded = false;
    this.res.onData((ab, isLast) => this.onClientData(ab, isLast));
  }

  private onClientData(ab: ArrayBuffer, isLast: boolean): void {
    if (this.finished) return;
    // uWS neuters the ArrayBuffer when this callback returns, and the socket may keep what we hand
    // it, so every chunk is copied.
    const n = ab.byteLength;
    this.bodyBytes += n;
    if (this.bodyBytes > this.ctx.limits.maxBodyBytes) return this.failRequest(RouterErrors.payloadTooLarge);
    if (isLast) this.bodyEnded = true;
    const chunk = n > 0 ? Buffer.from(ab.slice(0)) : undefined;
    if (this.requestWritten) {
      const conn = this.conn;
      if (!conn) return; // the response already ended (backend answered early); drop the rest
      if (chunk) this.writeBodyChunk(conn, chunk);
      if (isLast) this.endBody(conn);
      if (conn.socket.writableNeedDrain && !this.clientPaused && !isLast) {
        this.clientPaused = true;
        this.res.pause();
      }
      return;
    }
    if (chunk) {
      (this.queued ??= []).push(chunk);
      this.queuedBytes += n;
      if (this.queuedBytes > MAX_QUEUED_BODY && !this.clientPaused && !isLast) {
        this.clientPaused = true;
        this.res.pause();
      }
    }
  }

  private writeBodyChunk(conn: UpstreamConnection, chunk: Buffer): void {
    if (this.bodyMode === BodyMode.Chunked) conn.socket.write(chunk.length.toString(16) + CRLF);
    conn.socket.write(chunk);
    if (this.bodyMode === BodyMode.Chunked) conn.socket.write(CRLF);
  }

  private endBody(conn: UpstreamConnection): void {
    if (this.bodyMode === BodyMode.Chunked) conn.socket.write(LAST_CHUNK);
    if (this.bodyMode === BodyMode.Length && this.bodyBytes !== this.contentLength) return this.failRequest(RouterErrors.badRequest);
    this.requestSentAt = this.ctx.now;
  }

  // ---------------------------------------------------------------- upstream attempts

  /** Picks an endpoint and sends the request to it; retried here when no byte reached the last one. */
  attempt(fresh = false): void {
    const pool = this.route!;
    const now = this.ctx.now;
    const endpoint = pool.pick({ now, stickyInstanceId: this.stickyInstanceId, exclude: this.tried });
    if (endpoint === undefined) return this.respondError(this.attempts === 0 ? RouterErrors.noEndpoints : RouterErrors.endpointFailure);
    this.attempts++;
    this.endpoint = endpoint;
    this.holdsEndpoint = true;
    endpoint.inFlight++;
    const retryable = this.bodyMode === BodyMode.None && isIdempotent(this.method);
    const conn = this.ctx.upstreamFor(endpoint).acquire(this, fresh, now, retryable ? Infinity : SAFE_IDLE_AGE_MS);
    this.conn = conn;
    conn.parser.reset(this, this.isHead);
    if (conn.connected) this.writeRequest(conn);
    else this.connectStartedAt = Date.now(); // exact: the sweep compares it with its own Date.now()
  }

  onUpstreamConnect(conn: UpstreamConnection): void {
    if (conn === this.conn) this.writeRequest(conn);
  }

  private writeRequest(conn: UpstreamConnection): void {
    this.requestWritten = true;
    const socket = conn.socket;
    conn.writeHead(this.head + this.endpoint!.headerBytes + CRLF);
    if (this.queued) {
      for (const chunk of this.queued) this.writeBodyChunk(conn, chunk);
      this.queued = undefined;
      this.queuedBytes = 0;
    }
    if (this.bodyEnded) {
      if (this.bodyMode !== BodyMode.None) this.endBody(conn);
      else this.requestSentAt = this.ctx.now;
    } else if (this.clientPaused && !socket.writableNeedDrain) {
      this.clientPaused = false;
      this.res.resume();
    }
  }

  onUpstreamDrain(conn: UpstreamConnection): void {
    if (conn === this.conn && this.clientPaused && !this.aborted) {
      this.clientPaused = false;
      this.res.resume();
    }
  }

  /** `data` is the shared read buffer: valid only during this call. */
  onUpstreamData(conn: UpstreamConnection, data: Buffer, length: number): void {
    if (conn !== this.conn || this.aborted) return conn.destroy();
    // cork() takes a callback: hand it one static function and the arguments beside it instead of a
    // closure per read (cork runs it synchronously, so one slot of each is enough).
    corked.exchange = this;
    corked.conn = conn;
    corked.data = data;
    corked.length = length;
    this.res.cork(relayCorked);
    corked.exchange = corked.conn = corked.data = undefined;
  }

  /** Runs inside cork(): feeds the parser, which calls onHead/onBody/onEnd. */
  relay(conn: UpstreamConnection, data: Buffer, length: number): void {
    try {
      const left = conn.parser.execute(data, length);
      if (left > 0) conn.destroy(); // more than one response: never reuse this connection
    } catch (err) {
      this.ctx.metrics.upstreamErrors++;
      this.dropConnection();
      if (!this.headSent) this.respondError(RouterErrors.endpointFailure);
      else this.abortClient();
    }
  }

  onUpstreamClose(conn: UpstreamConnection, error: Error | undefined): void {
    if (conn !== this.conn) return;
    if (!this.aborted && conn.parser.endOfInput() && this.upstreamDone) return; // a close-delimited body ended
    this.conn = undefined;
    this.releaseEndpoint();
    if (this.aborted || this.finished) return;
    const endpoint = this.endpoint!;
    this.ctx.metrics.upstreamErrors++;
    const connectFailed = !conn.connected;
    if (connectFailed) this.route!.markFailed(endpoint, Date.now());
    // Retry only where no request byte reached the instance: the connection never opened, or a
    // reused keep-alive socket was found closed with nothing answered and nothing unrepeatable sent.
    const nothingReached = !this.requestWritten || (conn.reused && conn.parser.bytesSeen === 0 && this.bodyMode === BodyMode.None && isIdempotent(this.method));
    if (nothingReached && !this.headSent && this.attempts < this.ctx.limits.maxAttempts) {
      this.ctx.metrics.retries++;
      if (connectFailed) (this.tried ??= []).push(endpoint);
      this.requestWritten = false;
      return this.attempt(!connectFailed);
    }
    void error;
    if (!this.headSent) this.respondError(RouterErrors.endpointFailure);
    else this.abortClient();
  }

  // ---------------------------------------------------------------- response (parser sink, corked)

  onHead(head: ResponseHead): void {
    const res = this.res;
    this.headSent = true;
    this.status = head.status;
    this.responseLength = head.contentLength;
    if (head.statusText !== "200 OK") res.writeStatus(head.statusText); // uWS writes 200 OK itself
    const h = head.headers;
    for (let i = 0; i < h.length; i += 2) res.writeHeader(h[i]!, h[i + 1]!);
    // Draining: tell keep-alive clients to reconnect, so the load balancer moves them to another
    // router. Written here rather than by end(…, true), which tryEnd (bodies sent in parts) lacks.
    // Closing after this answer (closeAfter, or the client asked): one that ends through end(…, true) or
    // endWithoutBody(n, true) closes there, and uWS writes the header itself; one with no length, and a
    // 204/304, can only say so here (uWS 20.30 closes only from those calls, and end(…, true) after
    // write() puts its header into the body).
    if (this.closeAfter || this.clientClose ? head.contentLength < 0 || head.status === 204 || head.status === 304 : this.ctx.draining) res.writeHeader("Connection", "close");
    if (head.sessionCookie !== undefined && this.endpoint!.instanceId !== "") {
      const semi = head.sessionCookie.indexOf(";");
      res.writeHeader("Set-Cookie", `__VCAP_ID__=${this.endpoint!.instanceId}${semi >= 0 ? head.sessionCookie.slice(semi) : "; Path=/; HttpOnly"}`);
    }
    if (!head.keepAlive) this.keepUpstream = false;
  }

  private keepUpstream = true;

  onBody(chunk: Buffer): void {
    if (this.aborted) return;
    const res = this.res;
    this.responseBytes += chunk.length;
    const total = this.responseLength;
    if (total < 0) {
      if (!res.write(chunk)) this.stallUpstream(undefined);
      return;
    }
    if (this.stalled) {
      this.stalled = Buffer.concat([this.stalled, chunk]); // copies out of the shared read buffer
      return;
    }
    if (chunk.length === total) {
      res.end(chunk, this.clientClose || this.closeAfter);
      return this.clientDone();
    }
    // a body sent in parts cannot close the connection at its end: its head says so instead
    if (this.closeAfter && !this.clientClose && this.responseBytes === chunk.length) res.writeHeader("Connection", "close");
    const offset = res.getWriteOffset();
    const [ok, done] = res.tryEnd(chunk, total);
    if (done) return this.clientDone();
    if (!ok) {
      this.stalledOffset = offset;
      this.stallUpstream(Buffer.from(chunk)); // copy: chunk lives in the shared read buffer
    }
  }

  onEnd(): void {
    this.upstreamDone = true;
    const conn = this.conn;
    this.conn = undefined;
    this.releaseEndpoint();
    if (conn) {
      if (this.keepUpstream && this.bodyEnded && conn.alive) {
        conn.resume();
        conn.pool.release(conn, this.ctx.now);
      } else conn.destroy();
    }
    if (this.aborted || this.finished) return;
    const res = this.res;
    // uWS 20.30: endWithoutBody() with no arguments writes no Content-Length (right for 204/304 and
    // a HEAD of unknown length); passing undefined explicitly writes a bogus 2^63.
    if (this.status === 204 || this.status === 304 || (this.isHead && this.responseLength < 0)) {
      res.endWithoutBody();
      this.clientDone();
    } else if (this.isHead) {
      res.endWithoutBody(this.responseLength, this.clientClose || this.closeAfter);
      this.clientDone();
    } else if (this.responseLength < 0) {
      // never end(…, true) after write(): uWS 20.30 then writes its Connection header into the chunked
      // body (a client's `Connection: keep-alive, close`, which it does not read as close, got a corrupt
      // body). A client's plain `close` uWS honours itself; the others are said in the head (onHead).
      res.end();
      this.clientDone();
    } else if (this.responseLength === 0) {
      res.end(undefined, this.clientClose || this.closeAfter);
      this.clientDone();
    }
    // else: the body is written by onBody / onWritable, which finish the client side
  }

  private stallUpstream(chunk: Buffer | undefined): void {
    this.stalled = chunk;
    this.conn?.pause();
    if (this.writableHooked) return;
    this.writableHooked = true;
    this.res.onWritable((offset) => this.onClientWritable(offset));
  }

  private onClientWritable(offset: number): boolean {
    if (this.aborted || this.finished) return true;
    const stalled = this.stalled;
    if (stalled === undefined) {
      this.conn?.resume();
      return true;
    }
    const [ok, done] = this.res.tryEnd(stalled.subarray(offset - this.stalledOffset), this.responseLength);
    if (done) {
      this.stalled = undefined;
      this.clientDone();
    } else if (ok) {
      this.stalled = undefined;
      this.conn?.resume();
    }
    return ok;
  }

  // ---------------------------------------------------------------- endings

  /** The client went away: cancel the upstream request too. */
  onAborted(): void {
    this.aborted = true;
    if (!this.finished && this.status === 0) this.status = 499;
    this.dropConnection();
    this.finish();
  }

  /** Called once a second by the context's sweep. */
  checkTimeout(now: number): void {
    const conn = this.conn;
    if (conn === undefined || this.finished) return;
    const limits = this.ctx.limits;
    if (!conn.connected && now - this.connectStartedAt > limits.connectTimeoutMs) {
      conn.socket.destroy(new Error("connect timeout")); // onUpstreamClose retries elsewhere
    } else if (this.requestSentAt > 0 && !this.headSent && now - this.requestSentAt > limits.responseTimeoutMs) {
      this.dropConnection();
      this.respondError(RouterErrors.endpointTimeout);
    }
  }

  /**
   * Stage 3's answer, always followed by closing the connection: when the framing is in doubt, uWS
   * may have taken the body by another Content-Length than the one we refused, and what it reads next
   * on this connection would be a request smuggled past these checks. The answer waits for the next
   * turn of the event loop: uWS 20.30 keeps parsing the rest of the read buffer after the handler
   * returns (even after end(…, closeConnection)), and while this response is still pending it aborts
   * the connection on a further request instead of dispatching it. So bytes pipelined behind a
   * hostile request close the connection without an answer; otherwise the client gets the 4xx, then
   * the close.
   */
  rejectHostile(err: RouterError): void {
    this.clientClose = true;
    this.status = Number(err.status.slice(0, 3));
    this.routerError = err.code;
    setImmediate(() => this.respondError(err));
  }

  respondError(err: RouterError): void {
    if (this.aborted || this.finished || this.headSent) return;
    this.headSent = true;
    this.status = Number(err.status.slice(0, 3));
    this.routerError = err.code;
    const body = err.body(this.host);
    const close = this.clientClose || this.closeAfter || !this.bodyEnded || this.ctx.draining;
    this.res.cork(() => {
      this.res
        .writeStatus(err.status)
        .writeHeader("X-Cf-Routererror", err.code)
        .writeHeader("Content-Type", "text/plain; charset=utf-8")
        .end(body, close);
    });
    this.finish();
  }

  /** A problem with the request found while its body streams. */
  private failRequest(err: RouterError): void {
    this.dropConnection();
    if (!this.headSent) this.respondError(err);
    else this.abortClient();
  }

  private abortClient(): void {
    if (this.aborted || this.finished) return;
    if (this.status < 500) this.status = 502;
    this.res.close(); // the client sees a truncated response, never a silently short one
    // onAborted follows synchronously from close() and finishes the exchange
  }

  private dropConnection(): void {
    const conn = this.conn;
    if (conn === undefined) return;
    this.conn = undefined;
    this.releaseEndpoint();
    conn.destroy();
  }

  private releaseEndpoint(): void {
    if (!this.holdsEndpoint) return;
    this.holdsEndpoint = false;
    this.endpoint!.inFlight--;
  }

  private clientDone(): void {
    this.finish();
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    const ctx = this.ctx;
    ctx.removeActive(this);
    const route = this.route;
    ctx.metrics.recordRequest(this.status, route !== undefined && route.inTable ? route.key : undefined, performance.now() - this.startedAt);
    ctx.accessLog?.record(this);
  }
}

const corked: { exchange: Exchange | undefined; conn: UpstreamConnection | undefined; data: Buffer | undefined; length: number } = {
  exchange: undefined,
  conn: undefined,
  data: undefined,
  length: 0,
};
function relayCorked(): void {
  corked.exchange!.relay(corked.conn!, corked.data!, corked.length);
}

function isIdempotent(method: string): boolean {
  return method === "GET" || method === "HEAD" || method === "OPTIONS" || method === "PUT" || method === "DELETE" || method === "TRACE";
}
