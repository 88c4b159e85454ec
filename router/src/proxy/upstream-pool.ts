// Our own upstream connection pool over `net`, one per endpoint (host:port): keep-alive sockets
// reused LIFO (the warmest first), as many as the concurrency needs, idle ones closed after a while.
// A generic HTTP client costs about twice the CPU per request here (BRIEF), so this is hand-written.

import { connect, type Socket } from "node:net";
import { ResponseParser } from "./response-parser.ts";

/** The exchange using a connection: told about its socket's events. */
export interface UpstreamUser {
  onUpstreamConnect(conn: UpstreamConnection): void;
  /** `data[0..length)` holds the bytes read; `data` is shared, valid only during the call */
  onUpstreamData(conn: UpstreamConnection, data: Buffer, length: number): void;
  onUpstreamClose(conn: UpstreamConnection, error: Error | undefined): void;
  onUpstreamDrain(conn: UpstreamConnection): void;
}

export interface UpstreamPoolOptions {
  /** idle sockets kept per endpoint; size it to the client concurrency */
  maxIdle: number;
  idleTimeoutMs: number;
}

/**
 * One read buffer shared by every upstream socket (Node's `onread` option): reads land here instead
 * of a fresh 64 KiB allocation each, and skip the Readable stream machinery. Safe because each read
 * is handled synchronously; whoever keeps bytes beyond the callback copies them.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

export class UpstreamConnection {
  readonly socket: Socket;
  readonly parser = new ResponseParser();
  user: UpstreamUser | undefined = undefined;
  connected = false;
  /** served a request before: a failure before any response byte may just be a stale keep-alive */
  reused = false;
  idleSince = 0;
  private closeError: Error | undefined = undefined;

  constructor(readonly pool: UpstreamPool) {
    const socket = connect({
      host: pool.host,
      port: pool.port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (nread: number, buf: Uint8Array) => {
          const user = this.user;
          if (user === undefined) {
            socket.destroy(); // bytes on an idle connection: the backend is confused; never reuse it
            return false;
          }
          user.onUpstreamData(this, buf as Buffer, nread);
          return !this.paused;
        },
      },
    });
    this.socket = socket;
    socket.on("connect", () => {
      this.connected = true;
      this.user?.onUpstreamConnect(this);
    });
    socket.on("drain", () => this.user?.onUpstreamDrain(this));
    socket.on("end", () => socket.destroy());
    socket.on("error", (err) => {
      this.closeError = err;
    });
    socket.on("close", () => {
      pool.forget(this);
      const user = this.user;
      this.user = undefined;
      user?.onUpstreamClose(this, this.closeError);
    });
  }

  private paused = false;

  /** Stops reading (the client is slow); bytes wait in the kernel. */
  pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }

  /**
   * Writes a request head on an idle, connected socket straight to the handle (net.Socket's own
   * _writeGeneric), skipping the Writable stream's bookkeeping and its nextTick per write: the
   * hot path's one upstream write. Falls back to write() whenever the stream has anything queued.
   */
  writeHead(text: string): void {
    const socket = this.socket as Socket & { _writeGeneric?: (writev: boolean, data: string, encoding: string, cb: (err?: Error) => void) => void };
    if (socket._writeGeneric !== undefined && socket.writableLength === 0 && !socket.connecting) socket._writeGeneric(false, text, "utf8", ignoreWriteResult);
    else socket.write(text);
  }

  get alive(): boolean {
    return !this.socket.destroyed && this.socket.readyState === "open";
  }

  destroy(): void {
    this.user = undefined;
    this.socket.destroy();
  }
}

function ignoreWriteResult(): void {
  // a failed write surfaces as the socket's error and close, which the exchange handles
}

export class UpstreamPool {
  private readonly idle: UpstreamConnection[] = [];
  /** connections open now, idle or busy */
  open = 0;
  private closed = false;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly opts: UpstreamPoolOptions,
  ) {}

  /**
   * A connection for one request: an idle keep-alive one, or a new one (then wait for connect).
   * `maxIdleAgeMs` refuses sockets idle for longer: a request that cannot be retried should not
   * race a backend closing its idle connection (Node's default keep-alive timeout is 5 s).
   */
  acquire(user: UpstreamUser, fresh = false, now = 0, maxIdleAgeMs = Infinity): UpstreamConnection {
    if (!fresh) {
      const idle = this.idle;
      while (idle.length > 0) {
        const conn = idle.pop()!;
        if (conn.alive && now - conn.idleSince <= maxIdleAgeMs) {
          conn.user = user;
          conn.reused = true;
          return conn;
        }
        conn.destroy();
      }
    }
    const conn = new UpstreamConnection(this);
    conn.user = user;
    this.open++;
    return conn;
  }

  /** Returns a connection whose exchange ended cleanly. */
  release(conn: UpstreamConnection, now: number): void {
    conn.user = undefined;
    if (this.closed || !conn.alive || this.idle.length >= this.opts.maxIdle) return conn.destroy();
    conn.idleSince = now;
    this.idle.push(conn);
  }

  /** Called by a connection when its socket closed. */
  forget(conn: UpstreamConnection): void {
    this.open--;
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
  }

  get idleCount(): number {
    return this.idle.length;
  }

  /** Closes sockets idle for longer than the idle timeout (oldest are at the bottom of the stack). */
  sweepIdle(now: number): void {
    const limit = now - this.opts.idleTimeoutMs;
    let n = 0;
    while (n < this.idle.length && this.idle[n]!.idleSince < limit) n++;
    if (n === 0) return;
    for (const conn of this.idle.splice(0, n)) conn.destroy();
  }

  /** The endpoint left the table: close idle sockets now; busy ones close when their exchange ends. */
  close(): void {
    this.closed = true;
    for (const conn of this.idle.splice(0)) conn.destroy();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
