// The request path: ONE ordered list of stages, mirrored in router/README.md. Stages 1-7 run
// synchronously inside the uWS handler (HttpRequest is valid only there); 8-10 run as the upstream
// socket and the client socket make progress, inside the Exchange.
//
//  1. copy-request      the peer's address read once; method, target and headers copied from
//                       HttpRequest at once; the upstream request head is built in the same pass
//                       (hop-by-hop and spoofable headers dropped; what a client may claim about the
//                       hops before us — X-Forwarded-Proto/-Host/-Port, Forwarded, X-Real-IP — only
//                       passes from a trusted front end, SKIFF_ROUTER_TRUSTED_PROXIES: issue 24); a
//                       chunked request, or a POST/PUT/PATCH with no framing header, closes its
//                       connection after the answer (issue 19: uWS may frame what follows differently)
//  2. on-aborted        onAborted registered before anything can wait
//  3. reject-hostile    431 over the header limit; 400 for two different Content-Lengths or a bad one,
//                       two different Host lines, or a malformed Transfer-Encoding; 501 for a transfer
//                       coding other than chunked; 413 for a declared body over the limit (uWS itself
//                       closes CL+TE and garbage); the connection is closed after each answer (issue 5:
//                       never smuggled); counted by cause (request-refusals.ts)
//  4. require-host      400 empty_host
//  5. lookup-route      the matcher maps Host + path to a pool: 404 unknown_route
//  6. forwarded-headers X-Forwarded-For (the peer appended), X-Forwarded-Proto (the scheme the peer
//                       spoke, unless a trusted front end sent one), X-Request-Start, X-Vcap-Request-Id
//  7. read-body         onData streams the body (chunked bodies re-framed) with backpressure
//  8. send-upstream     on the next turn of the event loop, after uWS parsed the rest of the read (a
//                       request uWS aborts then reaches no instance: issue 19); pick an endpoint
//                       (sticky, round-robin or least-connection): 503 no_endpoints;
//                       pooled keep-alive connection or a new one; per-endpoint X-CF-* headers appended;
//                       up to 3 attempts, retried only when no request byte reached the instance;
//                       otherwise 502 endpoint_failure (504 endpoint_timeout when it never answers)
//  9. relay-response    incremental parser -> corked uWS writes; tryEnd/onWritable with the upstream
//                       socket paused; upstream close mid-body closes the client connection
// 10. finish            idempotent: counters, access log, connection back to the pool or closed

import type { HttpRequest, HttpResponse } from "uWebSockets.js";
import { BodyMode, Exchange } from "./exchange.ts";
import type { ProxyContext } from "./proxy-context.ts";
import { RouterErrors, type RouterError } from "./router-errors.ts";
import { RequestIds } from "./request-id.ts";
import { peerBytes, peerText } from "./remote-address.ts";
import { refuseRequest } from "./request-refusals.ts";

export const REQUEST_STAGES = [
  "copy-request",
  "on-aborted",
  "reject-hostile",
  "require-host",
  "lookup-route",
  "forwarded-headers",
  "read-body",
  "send-upstream",
  "relay-response",
  "finish",
] as const;

const VCAP_COOKIE = "__VCAP_ID__=";

export function createRequestHandler(ctx: ProxyContext): (res: HttpResponse, req: HttpRequest) => void {
  const ids = new RequestIds();
  const logging = ctx.accessLog !== undefined;
  // no list (the default): no peer is trusted, and nothing is checked per request
  const trusted = ctx.trustedProxies.size > 0 ? ctx.trustedProxies : undefined;
  // X-Request-Start is in milliseconds: its text is made once per millisecond, not per request.
  let startMs = 0;
  let startMsText = "0";
  // Stage 8 starts on the next turn of the event loop, never inside uWS's read (issue 19): uWS 20.30
  // goes on parsing the rest of the read buffer after the handler returns, and when it finds another
  // request there while this one waits (pipelined, or body bytes a header it hid made it frame as a
  // request) it aborts the connection. Started after that parse, an aborted request reaches no
  // instance. One setImmediate per batch of requests, not per request.
  let toSend: Exchange[] = [];
  let spare: Exchange[] = [];
  let sendScheduled = false;
  const sendBatch = () => {
    sendScheduled = false;
    const batch = toSend;
    toSend = spare;
    for (let i = 0; i < batch.length; i++) {
      const ex = batch[i]!;
      if (!ex.finished) ex.attempt();
    }
    batch.length = 0;
    spare = batch;
  };
  return (res, req) => {
    const ex = new Exchange(ctx, res);
    // 1. copy-request (the peer first: whether it is a trusted front end decides which headers pass)
    const peer = peerBytes(res);
    ex.remoteAddress = peerText(peer, res);
    const problem = copyRequest(ex, req, ctx.limits.maxHeaderBytes, logging, trusted !== undefined && trusted.containsAddress(peer));
    // 2. on-aborted
    res.onAborted(() => ex.onAborted());
    // 3. reject-hostile (request-refusals.ts: what is refused with which status, what uWS closes itself)
    const refusal = refuseRequest(ex, req, problem, ctx.limits.maxBodyBytes, ctx.metrics);
    if (refusal !== undefined) return ex.rejectHostile(refusal);
    // 4. require-host
    if (ex.host === "") return ex.respondError(RouterErrors.emptyHost);
    // 5. lookup-route
    const route = ctx.table.lookup(ex.host, ex.target);
    if (route === undefined) return ex.respondError(RouterErrors.unknownRoute);
    ex.route = route;
    // 6. forwarded-headers
    ex.requestId = ids.next();
    if (ex.startedAtMs !== startMs) {
      startMs = ex.startedAtMs;
      startMsText = String(startMs);
    }
    ex.head +=
      `X-Forwarded-For: ${ex.forwardedFor === "" ? ex.remoteAddress : `${ex.forwardedFor}, ${ex.remoteAddress}`}\r\n` +
      `X-Forwarded-Proto: ${ex.forwardedProto || ctx.scheme}\r\n` +
      `X-Request-Start: ${startMsText}\r\nX-Vcap-Request-Id: ${ex.requestId}\r\n`;
    ctx.addActive(ex);
    // 7. read-body
    if (ex.bodyMode !== BodyMode.None) ex.readBody();
    // 8-10. send-upstream, relay-response, finish
    toSend.push(ex);
    if (!sendScheduled) {
      sendScheduled = true;
      setImmediate(sendBatch);
    }
  };
}

/** Stage 1. Returns the error to answer with, or undefined. */
function copyRequest(ex: Exchange, req: HttpRequest, maxHeaderBytes: number, logging: boolean, trustedPeer: boolean): RouterError | undefined {
  const method = req.getCaseSensitiveMethod();
  const path = req.getUrl();
  const query = req.getQuery();
  ex.method = method;
  ex.target = query ? `${path}?${query}` : path;
  let head = `${method} ${ex.target} HTTP/1.1\r\n`;
  let headerBytes = head.length;
  let problem: RouterError | undefined;
  let contentLength = -1;
  let chunked = false;
  req.forEach((k, v) => {
    headerBytes += k.length + v.length + 4;
    switch (k) {
      case "host":
        ex.host = v;
        break;
      case "content-length": {
        const n = /^\d{1,15}$/.test(v) ? Number(v) : -2;
        if (n === -2 || (contentLength >= 0 && contentLength !== n)) problem = RouterErrors.badRequest;
        contentLength = n;
        return;
      }
      case "transfer-encoding":
        chunked = true;
        return;
      case "connection":
        if (v.toLowerCase().includes("close")) ex.clientClose = true;
        return;
      case "cookie": {
        const at = v.indexOf(VCAP_COOKIE);
        if (at >= 0) {
          const start = at + VCAP_COOKIE.length;
          const end = v.indexOf(";", start);
          ex.stickyInstanceId = (end < 0 ? v.slice(start) : v.slice(start, end)).trim();
        }
        break;
      }
      case "x-forwarded-for":
        ex.forwardedFor = v;
        return;
      case "x-forwarded-proto":
        if (trustedPeer) ex.forwardedProto = v; // else stage 6 sets the scheme the peer spoke
        return;
      // What the hops before us were: only a trusted front end knows, anyone else could be lying
      // (gorouter's sanitize_forwarded_proto). X-Forwarded-For passes from anyone, with the peer
      // appended, as gorouter, nginx and HAProxy do: its last entry is always the peer we saw.
      case "forwarded":
      case "x-forwarded-host":
      case "x-forwarded-port":
      case "x-real-ip":
        if (trustedPeer) break;
        return;
      case "user-agent":
        if (logging) ex.userAgent = v;
        break;
      case "referer":
        if (logging) ex.referer = v;
        break;
      // hop-by-hop, answered by uWS (expect), or ours to set: never forwarded as the client sent them
      case "keep-alive":
      case "proxy-connection":
      case "te":
      case "trailer":
      case "upgrade":
      case "expect":
      case "x-request-start":
      case "x-vcap-request-id":
      case "x-cf-applicationid":
      case "x-cf-instanceindex":
      case "x-cf-instanceid":
        return;
    }
    head += `${k}: ${v}\r\n`;
  });
  if (headerBytes > maxHeaderBytes) return RouterErrors.headersTooLarge;
  if (problem) return problem;
  if (chunked) {
    if (contentLength >= 0) return RouterErrors.badRequest;
    ex.bodyMode = BodyMode.Chunked;
    // uWS 20.30 skips 2 bytes after the last chunk whatever they are: a trailer's rest stays in its
    // buffer as the start of the next request, so the connection closes after the answer (issue 19)
    ex.closeAfter = true;
    head += "transfer-encoding: chunked\r\n";
  } else if (contentLength > 0) {
    ex.bodyMode = BodyMode.Length;
    ex.contentLength = contentLength;
    head += `content-length: ${contentLength}\r\n`;
  } else if (contentLength === 0) head += "content-length: 0\r\n";
  // A body method with no framing header is bodiless (RFC 9112 §6.3), or its framing header came after
  // a header line with an empty name, where uWS 20.30 ends the header block unseen: then the body
  // follows as what uWS takes for the next request. Served bodiless, and the connection closes after.
  else if (method === "POST" || method === "PUT" || method === "PATCH") ex.closeAfter = true;
  ex.head = head;
  return undefined;
}
