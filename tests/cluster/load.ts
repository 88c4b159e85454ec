// A bounded load loop through the load balancer: a few workers send GETs back to back (with a short
// pause, the machine is shared) and every request that is not a 200 from the app is recorded with
// why it failed, when it was sent and when it ended. Each request carries its own `?load=N` query, so
// a failure can be found again in the routers' access logs (inherent.ts).

export interface RequestFailure {
  /** the request target, `/?load=N`: the key into the routers' access logs */
  target: string;
  at: number; // ms since the loop started: when the request was sent
  end: number; // ms since the loop started: when it failed
  status?: number;
  routerError?: string;
  error?: string;
}

export interface LoadResult {
  requests: number;
  failed: number;
  failures: RequestFailure[];
  durationMs: number;
  workers: number;
}

export class LoadLoop {
  private stopped = false;
  private requests = 0;
  private failures: RequestFailure[] = [];
  private workers: Promise<void>[] = [];
  private t0 = 0;
  readonly workerCount: number;

  constructor(
    private readonly url: string,
    private readonly hostHeader: string,
    private readonly opts: { workers?: number; pauseMs?: number; timeoutMs?: number; maxMs?: number } = {},
  ) {
    this.workerCount = opts.workers ?? 3;
  }

  start(): this {
    this.t0 = performance.now();
    const maxMs = this.opts.maxMs ?? 180_000; // never runs unbounded, even if a scenario forgets stop()
    for (let i = 0; i < this.workerCount; i++) this.workers.push(this.worker(maxMs));
    return this;
  }

  /** ms since start: scenarios stamp their faults on the same clock as the failures. */
  now(): number {
    return performance.now() - this.t0;
  }

  private async worker(maxMs: number): Promise<void> {
    while (!this.stopped && this.now() < maxMs) {
      const at = this.now();
      const target = `/?load=${this.requests++}`;
      try {
        const res = await fetch(this.url + target, { headers: { host: this.hostHeader }, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5000) });
        const body = await res.text();
        if (res.status !== 200 || !body.startsWith("hello from skiff"))
          this.failures.push({ target, at, end: this.now(), status: res.status, routerError: res.headers.get("x-cf-routererror") ?? undefined });
      } catch (err) {
        this.failures.push({ target, at, end: this.now(), error: (err as Error).name + ": " + (err as Error).message });
      }
      await Bun.sleep(this.opts.pauseMs ?? 10);
    }
  }

  async stop(): Promise<LoadResult> {
    this.stopped = true;
    await Promise.all(this.workers);
    return { requests: this.requests, failed: this.failures.length, failures: this.failures, durationMs: this.now(), workers: this.workerCount };
  }
}

/** One line of the results table. */
export interface ScenarioResult {
  scenario: string;
  requests: number;
  failed: number;
  inherent: number;
  healMs: number | null;
  note?: string;
}

export function formatRow(r: ScenarioResult): string {
  const heal = r.healMs === null ? "—" : `${(r.healMs / 1000).toFixed(1)} s`;
  return `| ${r.scenario} | ${r.requests} | ${r.failed} | ${r.inherent} | ${heal} |${r.note ? ` ${r.note} |` : " |"}`;
}

/** Summarises failures by cause, for the log and for a failing assertion's message. */
export function describeFailures(f: RequestFailure[]): string {
  const counts = new Map<string, number>();
  for (const x of f) {
    const k = x.error ?? `${x.status}${x.routerError ? ` ${x.routerError}` : ""}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${n}× ${k}`).join(", ") || "none";
}
