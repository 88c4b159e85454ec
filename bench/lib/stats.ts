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
