// Gives memory back to the host once the agent has gone quiet. JavaScriptCore collects lazily: after a
// burst of starts, stops or stagings the agent's heap holds tens of MiB of garbage (measured after the
// agent bench: 53 MiB of heap of which 2 live) until something allocates enough to trigger a
// collection, and freed pages stay in the process. A full collection followed by `Bun.shrink()` (JSC's
// footprint shrink) returns them: the agent's RSS fell from 66-73 to 59-62 MiB. A collection of this
// heap takes ~5 ms, so it runs only when the heap has grown past a threshold and nothing happened for
// a while (a start's latency never pays for it). It also runs once after every burst of activity,
// whatever the heap's size: most of what a burst leaves is outside the JS heap (Bun's native buffers
// and malloc pages: after 16 starts and stops the heap held 6 MiB, yet a trim took RSS from 61.5
// to 55.9 MiB), so the heap alone does not show it.

export interface MemoryTrimOptions {
  /** how often the heap is looked at */
  intervalMs: number;
  /** trim when the JS heap holds more than this */
  thresholdBytes: number;
  /** and nothing happened (see `touch`) for at least this long */
  quietMs: number;
}

export interface MemoryTrimHooks {
  heapUsed(): number;
  collect(): void;
  now(): number;
}

export const DEFAULT_MEMORY_TRIM: MemoryTrimOptions = { intervalMs: 2_000, thresholdBytes: 12 * 1024 * 1024, quietMs: 1_500 };

const bunHooks: MemoryTrimHooks = {
  heapUsed: () => process.memoryUsage().heapUsed,
  collect: () => {
    Bun.gc(true);
    Bun.shrink();
  },
  now: () => Date.now(),
};

export class MemoryTrim {
  private lastActivity = 0;
  /** something happened since the last trim */
  private dirty = false;
  private timer: Timer | undefined;
  trims = 0;

  constructor(
    private readonly opts: MemoryTrimOptions = DEFAULT_MEMORY_TRIM,
    private readonly hooks: MemoryTrimHooks = bunHooks,
  ) {}

  /** Something happened (a start, a stop, a staging): wait for quiet before trimming. */
  touch(): void {
    this.lastActivity = this.hooks.now();
    this.dirty = true;
  }

  /**
   * One look: trims if the agent has been quiet and either something happened since the last trim or
   * the heap is over the threshold. Returns whether it trimmed.
   */
  check(): boolean {
    if (this.hooks.now() - this.lastActivity < this.opts.quietMs) return false;
    if (!this.dirty && this.hooks.heapUsed() <= this.opts.thresholdBytes) return false;
    this.dirty = false;
    this.hooks.collect();
    this.trims++;
    return true;
  }

  start(): void {
    this.timer ??= setInterval(() => this.check(), this.opts.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
