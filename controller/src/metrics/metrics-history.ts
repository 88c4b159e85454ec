// The console's short memory of what it measured: per app (requests/s, 5xx/s, p50/p99 latency from
// the routers) and per instance (CPU %, memory), one point per collection, for the last hour. Fixed
// rings of Float32s, capped in series count, so the memory it can take is known in advance (see
// `memoryBound`); a Prometheus scraping the routers and agents is the place for anything longer.

export interface HistoryLimits {
  /** points kept per series (window / interval) */
  points: number;
  /** apps with request series; beyond it the series heard from longest ago is dropped */
  maxApps: number;
  /** instances with CPU/memory series; beyond it the same */
  maxInstances: number;
}

export const APP_FIELDS = ["rps", "errors_per_second", "p50_ms", "p99_ms"] as const;
export const INSTANCE_FIELDS = ["cpu", "mem_bytes"] as const;

/** One ring of points (time in whole seconds, as uPlot wants) with `fields` values each; NaN is "no value" (JSON null). */
export class SeriesRing {
  private readonly times: Uint32Array;
  private readonly values: Float32Array;
  private next = 0;
  private size = 0;
  lastAt = 0;

  constructor(readonly capacity: number, readonly fields: readonly string[]) {
    this.times = new Uint32Array(capacity);
    this.values = new Float32Array(capacity * fields.length);
  }

  /** `t` in ms since the epoch, kept to the second */
  push(t: number, values: readonly (number | undefined | null)[]): void {
    this.times[this.next] = Math.round(t / 1000);
    for (let f = 0; f < this.fields.length; f++) this.values[this.next * this.fields.length + f] = values[f] ?? NaN;
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
    this.lastAt = t;
  }

  /** Oldest first, points at or after `since` (ms): `{t: [seconds...], <field>: [...]}`, null where no value. */
  toColumns(since = 0): Record<string, (number | null)[]> {
    const sinceSec = since / 1000;
    const cols: Record<string, (number | null)[]> = { t: [] };
    for (const f of this.fields) cols[f] = [];
    for (let k = 0; k < this.size; k++) {
      const i = (this.next - this.size + k + this.capacity) % this.capacity;
      if (this.times[i]! < sinceSec) continue;
      cols.t!.push(this.times[i]!);
      this.fields.forEach((f, fi) => {
        const v = this.values[i * this.fields.length + fi]!;
        cols[f]!.push(Number.isNaN(v) ? null : v);
      });
    }
    return cols;
  }

  bytes(): number {
    return this.times.byteLength + this.values.byteLength;
  }
}

interface InstanceSeries {
  app: string;
  index: number;
  ring: SeriesRing;
}

export class MetricsHistory {
  private readonly apps = new Map<string, SeriesRing>();
  private readonly instances = new Map<string, InstanceSeries>();
  /** requests over every router, whatever the route (the latency the routers measure today is router-wide) */
  readonly routers: SeriesRing;

  constructor(readonly limits: HistoryLimits) {
    this.routers = new SeriesRing(limits.points, APP_FIELDS);
  }

  /** The most memory the rings can take, in bytes. */
  static memoryBound(l: HistoryLimits): number {
    const ring = (fields: number) => l.points * 4 + l.points * fields * 4;
    return (l.maxApps + 1) * ring(APP_FIELDS.length) + l.maxInstances * ring(INSTANCE_FIELDS.length);
  }

  recordApp(app: string, t: number, v: { rps: number; errors_per_second: number; p50_ms?: number; p99_ms?: number }): void {
    let ring = this.apps.get(app);
    if (!ring) {
      evictOldest(this.apps, this.limits.maxApps, (r) => r.lastAt);
      this.apps.set(app, (ring = new SeriesRing(this.limits.points, APP_FIELDS)));
    }
    ring.push(t, [v.rps, v.errors_per_second, v.p50_ms, v.p99_ms]);
  }

  recordInstance(app: string, instance: string, index: number, t: number, cpu: number, memBytes: number): void {
    let s = this.instances.get(instance);
    if (!s) {
      evictOldest(this.instances, this.limits.maxInstances, (x) => x.ring.lastAt);
      this.instances.set(instance, (s = { app, index, ring: new SeriesRing(this.limits.points, INSTANCE_FIELDS) }));
    }
    s.ring.push(t, [cpu, memBytes]);
  }

  appSeries(app: string, since = 0): Record<string, (number | null)[]> | undefined {
    return this.apps.get(app)?.toColumns(since);
  }

  /** Every instance of the app with points at or after `since`, by index then instance id. */
  instanceSeries(app: string, since = 0): { instance_id: string; index: number; series: Record<string, (number | null)[]> }[] {
    const out = [];
    for (const [id, s] of this.instances) if (s.app === app && s.ring.lastAt >= since) out.push({ instance_id: id, index: s.index, series: s.ring.toColumns(since) });
    return out.sort((a, b) => a.index - b.index || a.instance_id.localeCompare(b.instance_id));
  }

  /** Drops series not heard from since `before` (deleted apps, replaced instances). */
  forgetOlderThan(before: number): void {
    for (const [k, r] of this.apps) if (r.lastAt < before) this.apps.delete(k);
    for (const [k, s] of this.instances) if (s.ring.lastAt < before) this.instances.delete(k);
  }

  counts(): { apps: number; instances: number } {
    return { apps: this.apps.size, instances: this.instances.size };
  }
}

function evictOldest<V>(m: Map<string, V>, max: number, lastAt: (v: V) => number): void {
  while (m.size >= max) {
    let oldest: string | undefined;
    let at = Infinity;
    for (const [k, v] of m) if (lastAt(v) < at) (at = lastAt(v)), (oldest = k);
    if (oldest === undefined) return;
    m.delete(oldest);
  }
}
