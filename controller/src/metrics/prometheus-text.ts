// Reads the Prometheus text format the routers serve on /metrics (only what the console charts:
// counters, gauges and histogram buckets with their labels), and turns two scrapes into rates and
// latency quantiles. Pure: no I/O.

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Every sample line of a text exposition; comments, blank and malformed lines are skipped. */
export function parsePrometheusText(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const brace = line.indexOf("{");
    const space = line.indexOf(" ");
    let name: string;
    const labels: Record<string, string> = {};
    let rest: string;
    if (brace >= 0 && (space < 0 || brace < space)) {
      name = line.slice(0, brace);
      const end = readLabels(line, brace + 1, labels);
      if (end < 0) continue;
      rest = line.slice(end + 1);
    } else {
      if (space < 0) continue;
      name = line.slice(0, space);
      rest = line.slice(space);
    }
    const value = Number(rest.trim().split(/\s+/)[0]);
    if (!Number.isNaN(value)) out.push({ name, labels, value });
  }
  return out;
}

/** Reads `a="x",b="y"}` from `start`; returns the index of the closing brace, or -1. */
function readLabels(line: string, start: number, into: Record<string, string>): number {
  let i = start;
  while (i < line.length) {
    while (line[i] === "," || line[i] === " ") i++;
    if (line[i] === "}") return i;
    const eq = line.indexOf("=", i);
    if (eq < 0 || line[eq + 1] !== '"') return -1;
    const key = line.slice(i, eq).trim();
    let j = eq + 2;
    let value = "";
    for (; j < line.length && line[j] !== '"'; j++) {
      if (line[j] === "\\" && j + 1 < line.length) {
        const n = line[++j];
        value += n === "n" ? "\n" : n;
      } else value += line[j];
    }
    if (j >= line.length) return -1;
    into[key] = value;
    i = j + 1;
  }
  return -1;
}

/** Increase of a counter between two scrapes; a counter that went down was reset (the router restarted). */
export function counterIncrease(before: number | undefined, after: number): number {
  if (before === undefined) return 0;
  return after >= before ? after - before : after;
}

/** Cumulative histogram buckets: upper bound (Infinity for +Inf) → count, sorted by bound. */
export type Buckets = [le: number, count: number][];

export function bucketsOf(samples: PromSample[], name: string, match: (labels: Record<string, string>) => boolean = () => true): Buckets {
  const out: Buckets = [];
  for (const s of samples) {
    if (s.name !== name || !match(s.labels) || s.labels.le === undefined) continue;
    out.push([s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), s.value]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** Buckets observed between two scrapes (a reset bucket counts from zero). */
export function bucketIncrease(before: Buckets | undefined, after: Buckets): Buckets {
  if (!before) return after.map(([le]) => [le, 0]);
  const prev = new Map(before);
  const reset = after.some(([le, c]) => c < (prev.get(le) ?? 0));
  return after.map(([le, c]) => [le, reset ? c : c - (prev.get(le) ?? 0)]);
}

/** Adds bucket sets with the same bounds (several routers). */
export function addBuckets(a: Buckets | undefined, b: Buckets): Buckets {
  if (!a) return b.map(([le, c]) => [le, c]);
  const m = new Map(a);
  for (const [le, c] of b) m.set(le, (m.get(le) ?? 0) + c);
  return [...m.entries()].sort((x, y) => x[0] - y[0]);
}

/**
 * The q-quantile (0..1) of cumulative buckets, interpolated linearly inside the bucket as Prometheus's
 * histogram_quantile does; undefined with no observations. Falls in +Inf: the last finite bound.
 */
export function quantileOf(buckets: Buckets, q: number): number | undefined {
  const total = buckets.length ? buckets[buckets.length - 1]![1] : 0;
  if (!(total > 0)) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      if (count === prevCount) return le;
      return prevLe + (le - prevLe) * ((rank - prevCount) / (count - prevCount));
    }
    prevLe = le === Infinity ? prevLe : le;
    prevCount = count;
  }
  return prevLe;
}
