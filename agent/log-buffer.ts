// Per-app ring buffers of recent log lines (answering dea.logs.recent), and the splitter that turns
// a process's output chunks into lines. Pure.

import type { LogLine } from "../bus/index.ts";

export class LogRing {
  private readonly lines: (LogLine | undefined)[];
  private next = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    this.lines = new Array(capacity);
  }

  push(line: LogLine): void {
    this.lines[this.next] = line;
    this.next = (this.next + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
  }

  /** The newest `limit` lines, oldest first. */
  recent(limit = this.capacity): LogLine[] {
    const n = Math.min(limit, this.size);
    const out: LogLine[] = [];
    for (let k = n; k > 0; k--) out.push(this.lines[(this.next - k + this.capacity) % this.capacity]!);
    return out;
  }
}

/** One ring per app; apps whose buffer was not touched for `idleMs` can be dropped with `prune`. */
export class AppLogBuffers {
  private readonly rings = new Map<string, { ring: LogRing; touched: number }>();

  constructor(readonly linesPerApp: number) {}

  push(line: LogLine): void {
    let entry = this.rings.get(line.app);
    if (!entry) this.rings.set(line.app, (entry = { ring: new LogRing(this.linesPerApp), touched: 0 }));
    entry.touched = line.ts;
    entry.ring.push(line);
  }

  recent(app: string, limit?: number): LogLine[] {
    return this.rings.get(app)?.ring.recent(limit) ?? [];
  }

  prune(keep: (app: string) => boolean, olderThan: number): void {
    for (const [app, e] of this.rings) if (!keep(app) && e.touched < olderThan) this.rings.delete(app);
  }
}

export const MAX_LINE_CHARS = 16 * 1024;

/** Splits a byte stream into lines; a line longer than MAX_LINE_CHARS is cut into pieces. */
export class LineSplitter {
  private partial = "";
  private readonly decoder = new TextDecoder();

  constructor(private readonly emit: (line: string) => void) {}

  write(chunk: Uint8Array): void {
    const text = this.partial + this.decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = text.indexOf("\n", start); nl !== -1; nl = text.indexOf("\n", start)) {
      this.emitLine(text.slice(start, nl));
      start = nl + 1;
    }
    this.partial = text.slice(start);
    while (this.partial.length > MAX_LINE_CHARS) {
      this.emit(this.partial.slice(0, MAX_LINE_CHARS));
      this.partial = this.partial.slice(MAX_LINE_CHARS);
    }
  }

  end(): void {
    this.partial += this.decoder.decode();
    if (this.partial.length > 0) this.emitLine(this.partial);
    this.partial = "";
  }

  private emitLine(line: string): void {
    const clean = line.endsWith("\r") ? line.slice(0, -1) : line;
    for (let i = 0; i < clean.length || i === 0; i += MAX_LINE_CHARS) this.emit(clean.slice(i, i + MAX_LINE_CHARS));
  }
}

/**
 * A token bucket on log lines per instance, so one app printing in a loop cannot flood the bus that
 * also carries route registrations. `take()` says whether a line may go out; `dropped()` returns and
 * resets how many were held back, for a summary line.
 */
export class LineRateLimit {
  private tokens: number;
  private last: number;
  private droppedCount = 0;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now = Date.now(),
  ) {
    this.tokens = burst;
    this.last = now;
  }

  take(now = Date.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.droppedCount++;
    return false;
  }

  dropped(): number {
    const n = this.droppedCount;
    this.droppedCount = 0;
    return n;
  }
}

/** Feeds a child's output to a line splitter until the pipe closes. */
export async function relayLines(pipe: ReadableStream<Uint8Array>, splitter: LineSplitter): Promise<void> {
  const reader = pipe.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      splitter.write(value);
    }
  } catch {
    // the pipe broke with the process: what was read is kept
  } finally {
    splitter.end();
  }
}
