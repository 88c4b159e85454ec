// The access log in gorouter's format. Lines are appended to a bounded memory buffer and written in
// the background with fs.write on the file descriptor (libuv's thread pool), never on the event loop:
// a slow disk or a reader that stops reading a pipe costs dropped lines, counted, never a stalled
// router or unbounded memory.

import { close as closeFd, fstatSync, open as openFd, write as writeFd } from "node:fs";

export interface AccessRecord {
  host: string;
  method: string;
  target: string;
  status: number;
  /** request body bytes received from the client */
  requestBytes: number;
  responseBytes: number;
  userAgent: string;
  referer: string;
  remoteAddress: string;
  /** X-Forwarded-For as the client sent it ("" when none); the log shows it with the client's address appended, as forwarded */
  forwardedFor: string;
  /** X-Forwarded-Proto as a trusted front end sent it ("" when none, or from any other peer: the log shows the scheme the client spoke, as forwarded) */
  forwardedProto: string;
  endpoint: { key: string; appId: string; instanceIndex: string; instanceId: string } | undefined;
  requestId: string;
  startedAtMs: number;
  routerError: string;
}

const FLUSH_MS = 200;
/** lines waiting to be written; past this, new lines are dropped and counted */
const MAX_BUFFERED = 4 * 1024 * 1024;
/** a write starts as soon as this much waits, not only on the timer */
const FLUSH_AT = 64 * 1024;
/** Linux's PIPE_BUF: a write of at most this many bytes to a pipe is atomic, so our lines never
 * interleave with the process's own log lines written to the same pipe (stdout) */
const PIPE_ATOMIC = 4096;
/** a non-blocking pipe that is full (EAGAIN) is tried again after this long */
const RETRY_MS = 50;

export class AccessLog {
  private lines: string[] = [];
  private bufferedBytes = 0;
  private writing = false;
  private closed = false;
  /** lines dropped because the buffer was full or a write failed */
  dropped = 0;
  /** lines written */
  written = 0;
  private readonly timer: ReturnType<typeof setInterval>;
  private idle: (() => void) | undefined = undefined;

  private constructor(
    private readonly fd: number,
    private readonly ownsFd: boolean,
    /** most bytes per write (PIPE_ATOMIC for pipes and sockets) */
    private readonly maxWrite: number,
    /** the scheme the client spoke to the router: x_forwarded_proto when the client sent none */
    private readonly scheme: string,
  ) {
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.timer.unref?.();
  }

  /** `path` is a file (appended to) or `-` for standard output. */
  static async open(path: string, scheme = "http"): Promise<AccessLog> {
    const fd = await AccessLog.openFd(path);
    return new AccessLog(fd, path !== "-", AccessLog.maxWriteFor(fd), scheme);
  }

  /**
   * The file descriptor to log to: `path` opened for appending (O_APPEND, so several writers — the
   * router's worker threads, each with an AccessLog on this descriptor — never write over each other),
   * or 1 for `-`.
   */
  static async openFd(path: string): Promise<number> {
    if (path === "-") return 1;
    return new Promise<number>((resolve, reject) => openFd(path, "a", (err, fd) => (err ? reject(new Error(`cannot open the access log ${path}: ${err.message}; set SKIFF_ROUTER_ACCESS_LOG to a writable file or -`)) : resolve(fd))));
  }

  /** A log on a descriptor opened elsewhere (AccessLog.openFd), which close() leaves open. */
  static forFd(fd: number, scheme = "http"): AccessLog {
    return new AccessLog(fd, false, AccessLog.maxWriteFor(fd), scheme);
  }

  /** Writes to a pipe or socket stay within the size the kernel writes atomically; to a file, any size. */
  private static maxWriteFor(fd: number): number {
    const stat = fstatSync(fd);
    return stat.isFIFO() || stat.isSocket() ? PIPE_ATOMIC : Infinity;
  }

  record(r: AccessRecord): void {
    if (this.closed || this.bufferedBytes >= MAX_BUFFERED) {
      this.dropped++;
      return;
    }
    const line = formatAccessLine(r, this.scheme, Date.now());
    this.lines.push(line);
    this.bufferedBytes += line.length;
    if (this.bufferedBytes >= FLUSH_AT) this.flush();
  }

  /** Starts writing what is buffered, unless a write is under way (it carries on when done). */
  flush(): void {
    if (this.writing || this.lines.length === 0) return;
    let lines = this.lines;
    if (this.maxWrite === Infinity) this.lines = [];
    else {
      // whole lines up to the atomic size (a single longer line goes alone)
      let n = 0;
      let bytes = 0;
      while (n < lines.length && (n === 0 || bytes + lines[n]!.length <= this.maxWrite)) bytes += lines[n++]!.length;
      this.lines = lines.slice(n);
      lines = lines.slice(0, n);
    }
    let chars = 0;
    for (const l of lines) chars += l.length;
    this.bufferedBytes -= chars;
    this.writing = true;
    const text = Buffer.from(lines.join(""));
    this.writeOut(text, 0, lines.length);
  }

  private writeOut(buf: Buffer, offset: number, lineCount: number): void {
    writeFd(this.fd, buf, offset, buf.length - offset, null, (err, n) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === "EAGAIN" && !this.closed) {
          setTimeout(() => this.writeOut(buf, offset, lineCount), RETRY_MS).unref?.();
          return;
        }
        this.dropped += lineCount;
        return this.afterWrite(0);
      }
      if (offset + n < buf.length) return this.writeOut(buf, offset + n, lineCount);
      this.afterWrite(lineCount);
    });
  }

  private afterWrite(lineCount: number): void {
    this.written += lineCount;
    this.writing = false;
    if (this.lines.length > 0 && (this.bufferedBytes >= FLUSH_AT || this.maxWrite !== Infinity || this.idle)) return this.flush();
    if (this.lines.length === 0) this.idle?.();
  }

  /** Writes what is buffered (waiting at most `timeoutMs` for a stuck reader), then closes the file. */
  async close(timeoutMs = 2000): Promise<void> {
    clearInterval(this.timer);
    if (this.writing || this.lines.length > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.idle = () => {
          clearTimeout(timer);
          resolve();
        };
        this.flush();
      });
    }
    this.closed = true;
    this.dropped += this.lines.length;
    this.lines = [];
    if (this.ownsFd && !this.writing) await new Promise<void>((resolve) => closeFd(this.fd, () => resolve()));
  }
}

/**
 * One line in gorouter's format:
 * `host - [start] "METHOD target HTTP/1.1" status bytes_received bytes_sent "referer" "user_agent"
 * "remote_addr" "backend_addr" x_forwarded_for:"…" x_forwarded_proto:"…" vcap_request_id:"…"
 * response_time:s app_id:"…" app_index:"…" instance_id:"…" x_cf_routererror:"…"`.
 * The remote address has no port: uWS 20.30 does not give it.
 */
export function formatAccessLine(r: AccessRecord, scheme: string, nowMs: number): string {
  const e = r.endpoint;
  const forwardedFor = r.forwardedFor === "" ? r.remoteAddress : `${r.forwardedFor}, ${r.remoteAddress}`;
  return (
    `${r.host || "-"} - [${new Date(r.startedAtMs).toISOString()}] "${r.method} ${q(r.target)} HTTP/1.1" ${r.status} ${r.requestBytes} ${r.responseBytes} ` +
    `"${q(r.referer)}" "${q(r.userAgent)}" "${r.remoteAddress}" "${e ? e.key : "-"}" x_forwarded_for:"${q(forwardedFor)}" x_forwarded_proto:"${q(r.forwardedProto || scheme)}" ` +
    `vcap_request_id:"${r.requestId || "-"}" response_time:${((nowMs - r.startedAtMs) / 1000).toFixed(6)} ` +
    `app_id:"${e?.appId || "-"}" app_index:"${e?.instanceIndex || "-"}" instance_id:"${e?.instanceId || "-"}" x_cf_routererror:"${r.routerError || "-"}"\n`
  );
}

const q = (s: string): string => (s ? s.replace(/["\\\n\r]/g, "_") : "-");
