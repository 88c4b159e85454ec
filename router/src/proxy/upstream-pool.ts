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
   * Writes a request head on an idle, connected socket: the hot path's one upstream write. Straight to
   * the libuv handle with one reusable write request (see HandleWrites): no Writable bookkeeping, no
   * native request object per write. Falls back to write() whenever anything is queued.
   */
  writeHead(text: string): void {
    const socket = this.socket;
    const handle = (socket as Socket & { _handle?: StreamHandle | null })._handle;
    if (handleWrites !== undefined && handle && socket.writableLength === 0 && !socket.connecting) handleWrites.writeString(socket, handle, text);
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

interface StreamHandle {
  writeUtf8String(req: object, text: string): number;
}
interface WriteReq {
  socket?: Socket;
  oncomplete?: (this: WriteReq, status: number) => void;
}
interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

/**
 * Writes on a net.Socket's libuv handle as net.Socket itself does (StreamBase::WriteString), minus
 * what a request head does not need: net's createWriteWrap makes a native WriteWrap object per write
 * and runs the Writable's bookkeeping. A write that completes at once (the usual case: a few hundred
 * bytes into an empty kernel buffer) leaves its request object unused, so one is kept and reused;
 * one still pending in libuv keeps its own and reports through oncomplete. Order is kept: libuv
 * queues a write behind a pending one. Only where Node's stream_wrap binding is there (not Bun).
 */
class HandleWrites {
  private spare: WriteReq | undefined = undefined;

  constructor(private readonly binding: StreamWrapBinding) {}

  writeString(socket: Socket, handle: StreamHandle, text: string): void {
    const req = this.spare ?? new this.binding.WriteWrap();
    this.spare = undefined;
    const err = handle.writeUtf8String(req, text);
    if (err !== 0) {
      this.spare = req;
      socket.destroy(new Error(`upstream write failed (errno ${err})`)); // the exchange sees the close
      return;
    }
    if (this.binding.streamBaseState[this.binding.kLastWriteWasAsync] === 0) {
      this.spare = req;
      return;
    }
    req.socket = socket;
    req.oncomplete = onPendingWriteDone;
  }
}

function onPendingWriteDone(this: WriteReq, status: number): void {
  if (status < 0) this.socket?.destroy(new Error(`upstream write failed (errno ${status})`));
  this.socket = undefined;
}

function loadHandleWrites(): HandleWrites | undefined {
  try {
    if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined") return undefined;
    const binding = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding("stream_wrap");
    if (typeof binding.WriteWrap !== "function" || !(binding.streamBaseState instanceof Int32Array) || typeof binding.kLastWriteWasAsync !== "number") return undefined;
    return new HandleWrites(binding as StreamWrapBinding);
  } catch {
    return undefined;
  }
}

const handleWrites = loadHandleWrites();

export class UpstreamPool {
  private readonly idle: UpstreamConnection[] = [];
  /** connections open now, idle or busy */
  open = 0;
  private closed = false;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly opts: UpstreamPoolOptions,
    /** the generation of the endpoint row it serves (ProxyContext keys pools by row) */
    readonly endpointGen = 0,
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
