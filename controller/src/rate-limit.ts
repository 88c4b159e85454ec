// A fixed-window counter per key (the controller keys logins by client address): at most `limit`
// hits per `windowMs`, then a refusal saying when the window ends. Pure and in memory: each
// controller process counts its own clients.

export type RateVerdict = { ok: true } | { ok: false; retryAfterMs: number };

export class FixedWindowLimiter {
  private readonly windows = new Map<string, { start: number; hits: number }>();

  constructor(private readonly opts: { limit: number; windowMs: number; /** keys kept before stale ones are dropped */ maxKeys?: number }) {}

  hit(key: string, now: number): RateVerdict {
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.opts.windowMs) {
      if (!w && this.windows.size >= (this.opts.maxKeys ?? 100_000)) this.prune(now);
      w = { start: now, hits: 0 };
      this.windows.set(key, w);
    }
    if (w.hits >= this.opts.limit) return { ok: false, retryAfterMs: w.start + this.opts.windowMs - now };
    w.hits++;
    return { ok: true };
  }

  get size(): number {
    return this.windows.size;
  }

  /** Drops ended windows; if every window is live (a flood of addresses), the oldest half. */
  private prune(now: number): void {
    for (const [k, w] of this.windows) if (now - w.start >= this.opts.windowMs) this.windows.delete(k);
    if (this.windows.size < (this.opts.maxKeys ?? 100_000)) return;
    let drop = Math.ceil(this.windows.size / 2);
    for (const k of this.windows.keys()) {
      if (drop-- <= 0) break;
      this.windows.delete(k);
    }
  }
}
