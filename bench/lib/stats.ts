// Summaries of repeated measurements: the median and the spread, as every bench reports them.

export interface Summary {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median, as a fraction */
  spread: number;
  runs: number;
}

export function summarize(values: number[]): Summary {
  if (values.length === 0) return { median: NaN, min: NaN, max: NaN, spread: NaN, runs: 0 };
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, spread: median ? (s[s.length - 1]! - s[0]!) / median : 0, runs: s.length };
}

/** The p-th percentile (0..100) of unsorted samples, nearest-rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const pct = (s: Summary) => `±${(s.spread * 50).toFixed(0)}%`;

/** A summary as flat report figures: `<prefix>.median`, `.spread`, `.min`, `.max`, `.p99`, `.runs`. */
export function summaryFigures(prefix: string, values: number[], s: Summary = summarize(values)): Record<string, number> {
  return {
    [`${prefix}.median`]: s.median,
    [`${prefix}.spread`]: s.spread,
    [`${prefix}.min`]: s.min,
    [`${prefix}.max`]: s.max,
    [`${prefix}.p99`]: percentile(values, 99),
    [`${prefix}.runs`]: s.runs,
  };
}

/** A spread as the tables show it: ± half the range, in percent of the median; "—" where there is none. */
export const spreadCell = (f: number | null | undefined): string => (f === null || f === undefined || !Number.isFinite(f) ? "—" : `±${(f * 50).toFixed(0)}%`);

/**
 * A writer of flat report figures into `figures`, each under `<prefix>.<name>` (`<name>` without a
 * prefix); what is not a finite number (null, undefined, NaN: a figure not measured) is left out.
 */
export function figureWriter(figures: Record<string, number>, prefix = ""): (name: string, v: number | null | undefined) => void {
  return (name, v) => {
    if (v !== null && v !== undefined && Number.isFinite(v)) figures[prefix ? `${prefix}.${name}` : name] = v;
  };
}
