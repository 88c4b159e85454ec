// The router's request path over raw sockets, against the real router process (tests/router/router-harness.ts:
// the bundle built from router/main.ts, a real nats-server, a route to a Bun.serve backend). Each input is
// one connection: requests with random methods, targets, versions, header names and values, Host lines,
// Content-Length and chunked bodies (random chunk sizes, extensions, bad sizes), sent pipelined or one at
// a time, cut into random slices with delays (a slow client), sometimes closed early.
// Property: what comes back parses as HTTP/1.1 responses (no garbage); a status the router documents
// (never 500; its 5xx carry X-Cf-Routererror); a connection whose requests are all well-formed gets one
// 200 from the backend per request, in order, with the backend's echo of its method and target; the
// backend never sees more requests than the client got answers for (no smuggling); no hang (an answer or
// a close within 3 s of a complete request); and the router stays up.

import * as fc from "fast-check";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { Subjects } from "../../../bus/index.ts";
import { stopAllProcesses } from "../../support/processes.ts";
import { startHarness, startRouter, waitForStatus, type Harness, type RunningRouter } from "../../router/router-harness.ts";
import { parseResponses } from "../lib/http-responses.ts";
import { jsonFile, readJson, violated, type FuzzTarget } from "../lib/fuzz-target.ts";

export const FUZZ_HOST = "fuzz.router.test";

type Body = { kind: "none" } | { kind: "length"; data: string; lie: number } | { kind: "chunked"; chunks: string[]; ext: string; badSize: boolean; trailer: string };
export interface RequestSpec {
  method: string;
  target: string;
  version: string;
  host: "good" | "none" | "other" | "two" | "port" | "upper" | "empty";
  headers: [string, string][];
  body: Body;
  valid: boolean;
}
export interface RouterInput {
  requests: RequestSpec[];
  pipelined: boolean;
  cuts: number[];
  delayMs: number;
  /** close the socket after this fraction of the bytes (a client that gives up) */
  closeAt: number | null;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const GOOD_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
const method = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...GOOD_METHODS) }, fc.constantFrom("get", "CONNECT", "TRACE", "PROPFIND", "G ET", "", "GET\u0000", "\u00ff", "X".repeat(300)), fc.string({ maxLength: 8 }));
const segment = fc.oneof(fc.constantFrom("a", "api", "%2F", "%zz", "..", ".", "é", "~", "a;b", "x".repeat(50)), fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@%-]{0,8}$/));
const goodTarget = fc.tuple(fc.array(segment, { maxLength: 4 }), fc.constantFrom("", "?q=1", "?a=b&c=%20", "#frag")).map(([s, q]) => "/" + s.filter((x) => /^[\x21-\x7e]*$/.test(x) && !x.includes("#") && !x.includes("?")).join("/") + (q.startsWith("#") ? "" : q));
const target = fc.oneof({ weight: 4, arbitrary: goodTarget }, fc.constantFrom("*", "http://fuzz.router.test/x", "//x", "", "/a b", "/\u0000", "/" + "p".repeat(9000), "/\u00e9"), fc.string({ maxLength: 12 }));
const version = fc.oneof({ weight: 6, arbitrary: fc.constant("HTTP/1.1") }, fc.constantFrom("HTTP/1.0", "HTTP/2.0", "HTTP/1.2", "http/1.1", "HTTP/1", ""));
const headerName = fc.oneof({ weight: 3, arbitrary: fc.constantFrom("Accept", "X-Custom", "User-Agent", "Cookie", "X-Forwarded-For", "Forwarded", "X-Forwarded-Proto", "Expect", "Upgrade", "Connection", "TE", "Trailer") }, fc.stringMatching(/^[A-Za-z0-9-]{1,12}$/), fc.constantFrom("Bad Name", "Bad:Name", "", " X", "X\u0000", "\u00ff", "X".repeat(9000)));
const headerValue = fc.oneof({ weight: 3, arbitrary: fc.stringMatching(/^[\x20-\x7e]{0,20}$/).map((s) => s.trim()) }, fc.constantFrom("a\rb", "a\nb", "\u0000", "\u00ff\u00fe", " x ", "\tx", "v".repeat(20000), "100-continue", "websocket", "close", "keep-alive, Upgrade"), fc.string({ maxLength: 10 }));
const bodyData = fc.oneof(fc.constant(""), fc.stringMatching(/^[a-z]{1,40}$/), fc.string({ unit: "binary", maxLength: 30 }).map((s) => Buffer.from(s, "utf8").toString("latin1")), fc.constant("b".repeat(70_000)));
const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("length" as const), data: bodyData, lie: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: -5, max: 5 })) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("chunked" as const), chunks: fc.array(bodyData, { maxLength: 4 }), ext: fc.constantFrom("", "", ";a=b", ";" + "e".repeat(5000)), badSize: fc.boolean().map((b) => b && Math.random() < 0.3), trailer: fc.constantFrom("", "", "X-T: 1\r\n") }) },
);

const request: fc.Arbitrary<RequestSpec> = fc.record({
  method,
  target,
  version,
  host: fc.oneof({ weight: 8, arbitrary: fc.constant("good" as const) }, fc.constantFrom("none", "other", "two", "port", "upper", "empty") as fc.Arbitrary<RequestSpec["host"]>),
  headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 5 }),
  body,
}).map((r) => ({
  ...r,
  valid:
    GOOD_METHODS.includes(r.method) && /^\/[\x21-\x7e]*$/.test(r.target) && r.target.length < 2000 && r.version === "HTTP/1.1" && ["good", "port", "upper"].includes(r.host) &&
    r.headers.every(([n, v]) => TOKEN.test(n) && n.length < 100 && /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$|^$/.test(v) && v.length < 1000 && !/^(content-length|transfer-encoding|host|connection|upgrade|expect|te|trailer)$/i.test(n)) &&
    (r.body.kind === "none" || (r.body.kind === "length" && r.body.lie === 0) || (r.body.kind === "chunked" && !r.body.badSize && r.body.ext.length < 100)) &&
    (r.body.kind === "none" || !["GET", "DELETE", "OPTIONS"].includes(r.method)),
}));

/**
 * What this fuzzing found in the router (issue 19; router/README.md, "Known limits"). Fixed, and in the
 * suite's inputs again: a chunked body with a trailer left the connection's next request unanswered
 * (uWS 20.30 reads the trailer's rest as the start of a request: the router now closes the connection
 * after every chunked request, and the client goes on on a new one). Limits of uWebSockets.js 20.30
 * that the router cannot see past, left out of the suite's inputs (`npm run fuzz` keeps them in; their
 * inputs are in tests/fuzz/corpus/router-requests/known-failing/): a chunk extension is read as digits
 * of the chunk size, so the body is misread and never ends; requests pipelined behind one waiting for
 * its answer make uWS abort the connection (none reaches an instance when they come in one read, one
 * that came earlier has); a header line with an empty name ends uWS's header block, unseen by the router.
 */
export function withoutKnownRouterBugs(i: RouterInput): RouterInput {
  return {
    ...i,
    pipelined: false,
    requests: i.requests.map((r) => ({
      ...r,
      headers: r.headers.filter(([name]) => name !== ""),
      ...(r.body.kind === "chunked" ? { body: { ...r.body, ext: "" } } : {}),
    })),
  };
}

export const routerInput: fc.Arbitrary<RouterInput> = fc.record({
  requests: fc.array(request, { minLength: 1, maxLength: 4 }),
  pipelined: fc.boolean(),
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
  delayMs: fc.constantFrom(0, 0, 1, 5, 20),
  closeAt: fc.oneof({ weight: 6, arbitrary: fc.constant(null) }, fc.double({ min: 0, max: 1, noNaN: true })),
});

/** A well-formed request that still has a quirk: what the suite's valid-only property draws from. */
export const validRouterInput: fc.Arbitrary<RouterInput> = fc.record({
  requests: fc.array(request.filter((r) => r.valid), { minLength: 1, maxLength: 3 }),
  pipelined: fc.constant(false),
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
  delayMs: fc.constantFrom(0, 1, 5),
  closeAt: fc.constant(null),
});

export function requestBytes(r: RequestSpec, tag: string): string {
  const sep = r.target.includes("?") ? "&" : "?";
  const target = r.target.startsWith("/") ? `${r.target.split("#")[0]}${sep}fz=${tag}` : r.target;
  const lines = [`${r.method} ${target} ${r.version}`.trimEnd()];
  const host = { good: FUZZ_HOST, port: `${FUZZ_HOST}:80`, upper: FUZZ_HOST.toUpperCase(), other: "unknown.router.test", empty: "", two: FUZZ_HOST, none: "" }[r.host];
  if (r.host !== "none") lines.push(`Host: ${host}`);
  if (r.host === "two") lines.push("Host: other.router.test");
  for (const [n, v] of r.headers) lines.push(`${n}: ${v}`);
  let payload = "";
  if (r.body.kind === "length") {
    lines.push(`Content-Length: ${r.body.data.length + r.body.lie}`);
    payload = r.body.data;
  } else if (r.body.kind === "chunked") {
    lines.push("Transfer-Encoding: chunked");
    for (const c of r.body.chunks) if (c.length) payload += `${r.body.badSize ? "zz" : c.length.toString(16)}${r.body.ext}\r\n${c}\r\n`;
    payload += `0\r\n${r.body.trailer}\r\n`;
  }
  return lines.join("\r\n") + "\r\n\r\n" + payload;
}

interface Exchange {
  text: string;
  closed: boolean;
  /** ms from the last byte sent to the close or the last byte received */
  quietMs: number;
}

/** One connection: writes `pieces` with delays (waiting for an answer between requests unless pipelined), then listens until close or `idleMs` of silence. */
function converse(port: number, parts: string[][], delayMs: number, closeAfterBytes: number | null, idleMs: number, answerWithinMs: number, complete: (text: string) => boolean, owed: (text: string) => boolean = () => false): Promise<Exchange & { answeredEach: boolean[] }> {
  return new Promise((resolve) => {
    let socket!: Socket;
    /** what came back, over every connection this conversation used */
    let text = "";
    /** the current connection is closed */
    let closed = false;
    let lastActivity = performance.now();
    const answeredEach: boolean[] = [];
    const open = () => {
      const s = connect(port, "127.0.0.1");
      s.setNoDelay(true);
      s.on("data", (d) => s === socket && ((text += d.toString("latin1")), (lastActivity = performance.now())));
      s.on("error", () => {});
      s.on("close", () => s === socket && ((closed = true), (lastActivity = performance.now())));
      socket = s;
      closed = false;
    };
    open();
    (async () => {
      let sent = 0;
      outer: for (const [n, pieces] of parts.entries()) {
        // RFC 9112 §9.6: after an answer saying Connection: close, a client sends its next request on a new connection
        if (n > 0) {
          const p = parseResponses(text, closed);
          if (!p.partial && /(^|,)\s*close\s*(,|$)/i.test(p.responses.at(-1)?.headers.connection ?? "")) {
            socket.destroy();
            open();
          }
        }
        const before = text.length;
        for (const p of pieces) {
          if (closed) break outer;
          let piece = p;
          if (closeAfterBytes !== null && sent + piece.length >= closeAfterBytes) {
            piece = piece.slice(0, Math.max(0, closeAfterBytes - sent));
            socket.write(Buffer.from(piece, "latin1"));
            socket.end();
            socket.destroy();
            break outer;
          }
          socket.write(Buffer.from(piece, "latin1"));
          sent += piece.length;
          if (delayMs) await Bun.sleep(delayMs);
        }
        lastActivity = performance.now();
        if (parts.length > 1) {
          // one at a time: wait for something back before the next request
          const start = performance.now();
          while (!closed && text.length === before && performance.now() - start < answerWithinMs) await Bun.sleep(1);
          answeredEach.push(text.length > before);
          // let the whole response arrive
          const settle = performance.now();
          while (!closed && parseResponses(text, false).partial && performance.now() - settle < 200) await Bun.sleep(1);
        }
      }
      const start = performance.now();
      // until complete, closed, or quiet for idleMs — but a request the backend has seen is owed an
      // answer, which a loaded machine may take a while to send: wait for it up to 3 s
      for (;;) {
        if (closed || complete(text)) break;
        const now = performance.now();
        if (now - start > Math.max(answerWithinMs, 3000) + idleMs) break;
        if (now - lastActivity >= idleMs && (!owed(text) || now - start > 3000)) break;
        await Bun.sleep(2);
      }
      const quietMs = performance.now() - lastActivity;
      socket.destroy();
      resolve({ text, closed, quietMs, answeredEach });
    })();
  });
}

/** Statuses the router itself may answer with (its own errors carry X-Cf-Routererror when 5xx). */
const ROUTER_STATUSES = new Set([400, 404, 405, 408, 411, 413, 414, 417, 421, 426, 431, 501, 502, 503, 504, 505]);

export class RouterFuzz {
  private h?: Harness;
  private router?: RunningRouter;
  private backend?: ReturnType<typeof Bun.serve>;
  /** tags the backend has seen: `conn.n` → count */
  private readonly seen = new Map<string, number>();
  private conn = 0;
  private register?: ReturnType<typeof setInterval>;
  inputs = 0;
  rssStart = 0;

  async start(): Promise<void> {
    this.h = await startHarness();
    this.router = await startRouter(this.h.bundle, this.h.nats);
    this.backend = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (req) => {
        const url = new URL(req.url);
        const tag = url.searchParams.get("fz");
        if (tag) this.seen.set(tag, (this.seen.get(tag) ?? 0) + 1);
        await req.arrayBuffer().catch(() => undefined);
        return new Response(`ok ${req.method} ${tag}`, { headers: { "x-fuzz-backend": "1" } });
      },
    });
    this.h.bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", port: this.backend.port!, uris: [FUZZ_HOST] });
    await this.h.bus.flush();
    await waitForStatus(this.router.url, FUZZ_HOST, 200);
    // re-registered as an agent does, or the router prunes the route after its stale threshold (120 s)
    this.register = setInterval(() => this.h!.bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", port: this.backend!.port!, uris: [FUZZ_HOST] }), 10_000);
    this.rssStart = this.rss();
  }

  rss(): number {
    try {
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${this.router!.process.pid}/status`, "utf8"));
      return m ? Number(m[1]) / 1024 : 0;
    } catch {
      return 0;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.register);
    this.backend?.stop(true);
    await stopAllProcesses();
    await this.h?.stop();
  }

  async check(input: RouterInput): Promise<void> {
    const router = this.router!;
    const conn = ++this.conn;
    this.inputs++;
    const tags = input.requests.map((_, i) => `${conn}.${i}`);
    const raw = input.requests.map((r, i) => requestBytes(r, tags[i]!));
    const all = raw.join("");
    const cut = (s: string, offset: number): string[] => {
      const at = [...new Set(input.cuts.map((c) => Math.floor(c * all.length) - offset).filter((c) => c > 0 && c < s.length))].sort((a, b) => a - b);
      const out: string[] = [];
      let prev = 0;
      for (const c of at) out.push(s.slice(prev, c)), (prev = c);
      out.push(s.slice(prev));
      return out;
    };
    let offset = 0;
    const parts = input.pipelined || raw.length === 1 ? [cut(all, 0)] : raw.map((r) => ((offset += r.length), cut(r, offset - r.length)));
    const allValid = input.requests.every((r) => r.valid) && input.closeAt === null;
    const want = input.requests.length;
    const complete = (text: string) => {
      const p = parseResponses(text, false);
      return !p.partial && p.responses.length >= want;
    };
    const lengthInFlight = input.requests.some((r) => (r.body.kind === "length" && r.body.lie > 0) || (r.body.kind === "chunked" && r.body.badSize)) ? 1 : 0;
    const owed = (text: string) => {
      const hits = tags.reduce((n, t) => n + (this.seen.get(t) ?? 0), 0);
      return input.closeAt === null && hits > parseResponses(text, false).responses.filter((r) => r.headers["x-fuzz-backend"] === "1").length + lengthInFlight;
    };
    const ex = await converse(router.port, parts, input.delayMs, input.closeAt === null ? null : Math.floor(input.closeAt * all.length), allValid ? 3000 : all.length > 10_000 ? 1500 : 300, allValid ? 3000 : 400, complete, owed);
    const where = () => `\nrequest bytes: ${JSON.stringify(all.slice(0, 600))}\nanswer: ${JSON.stringify(ex.text.slice(0, 600))}`;
    if (router.process.exited !== undefined && (await Promise.race([router.process.exited.then(() => true), Bun.sleep(0).then(() => false)]))) violated(`the router exited${where()}`);
    const parsed = parseResponses(ex.text, ex.closed);
    if (parsed.garbage) violated(`the router sent something that is not an HTTP/1.1 response: ${JSON.stringify(parsed.garbage)}${where()}`);
    // interim answers: only uWS's 100 Continue, and only to a request that asked for it (Expect: 100-continue;
    // uWS writes one before each handler a request passes, so a GET without an upgrade gets two)
    if (parsed.interim.some((status) => status !== 100)) violated(`an interim ${parsed.interim.join(", ")}${where()}`);
    if (parsed.interim.length > 0 && !input.requests.some((r) => r.headers.some(([n, v]) => n.toLowerCase() === "expect" && v.toLowerCase() === "100-continue")))
      violated(`a 100 Continue to requests that asked for none${where()}`);
    const fromBackend = parsed.responses.filter((r) => r.headers["x-fuzz-backend"] === "1");
    for (const r of parsed.responses) {
      if (r.headers["x-fuzz-backend"] === "1") {
        if (r.status !== 200) violated(`a backend answer with status ${r.status}${where()}`);
        continue;
      }
      if (!ROUTER_STATUSES.has(r.status)) violated(`the router answered ${r.status}${where()}`);
      if (r.status >= 500 && !r.headers["x-cf-routererror"]) violated(`a ${r.status} without X-Cf-Routererror${where()}`);
    }
    // no smuggling: the backend saw no more of this connection's requests than came back from it
    await Bun.sleep(input.closeAt === null ? 0 : 20);
    const hits = tags.reduce((n, t) => n + (this.seen.get(t) ?? 0), 0);
    for (const t of tags) this.seen.delete(t);
    // a body shorter than its Content-Length keeps one request in flight (the router waits for the rest);
    // everything after it is that body, so no further request may reach the backend
    // (a proxy that streams bodies sends the head on before it reads a malformed chunk size, too)
    const inFlight = input.requests.some((r) => (r.body.kind === "length" && r.body.lie > 0) || (r.body.kind === "chunked" && r.body.badSize)) ? 1 : 0;
    if (input.closeAt === null && hits > fromBackend.length + inFlight) violated(`the backend saw ${hits} requests of this connection but the client got ${fromBackend.length} answers from it${where()}`);
    if (allValid) {
      if (fromBackend.length !== input.requests.length || parsed.responses.length !== input.requests.length) {
        violated(`${input.requests.length} well-formed request(s) ${input.pipelined ? "pipelined" : "one at a time"} got ${parsed.responses.length} response(s), ${fromBackend.length} from the backend (statuses ${parsed.responses.map((r) => r.status).join(",") || "none"}; closed ${ex.closed})${where()}`);
      }
      fromBackend.forEach((r, i) => {
        const want = `ok ${input.requests[i]!.method} ${tags[i]}`;
        if (r.body !== want) violated(`response ${i} is ${JSON.stringify(r.body.slice(0, 100))}, not ${JSON.stringify(want)}${where()}`);
      });
    } else if (input.closeAt === null && !ex.closed && parsed.responses.length === 0 && ex.quietMs < 300 && ex.text === "") {
      // still talking: fine
    }
    if (this.inputs % 25 === 0) {
      const res = await fetch(`${router.statusUrl}/health`).catch(() => undefined);
      if (!res || res.status !== 200) violated(`the router's /health answered ${res?.status ?? "nothing"} after ${this.inputs} connections`);
    }
  }
}

export function routerTarget(opts: { valid?: boolean; skipKnownBugs?: boolean } = {}): FuzzTarget<RouterInput> {
  const fuzz = new RouterFuzz();
  const base = opts.valid ? validRouterInput : routerInput;
  return {
    name: opts.valid ? "router-requests-valid" : "router-requests",
    describe: `the real router process over raw sockets${opts.valid ? " (well-formed requests only)" : ""}: HTTP/1.1 answers, documented statuses, one 200 per well-formed request, no smuggling, no hang`,
    arbitrary: opts.skipKnownBugs ? base.map(withoutKnownRouterBugs) : base,
    async: true,
    start: () => fuzz.start(),
    stop: () => fuzz.stop(),
    check: (i) => fuzz.check(i),
    save: (i) => jsonFile(i),
    load: (_n, b) => readJson<RouterInput>(b),
  };
}
