// Numbers and times the way the console shows them.

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024, u = 0;
  while (v >= 1024 && u < units.length - 1) (v /= 1024), u++;
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

export const megabytes = (mb: number) => (mb >= 1024 && mb % 1024 === 0 ? `${mb / 1024}G` : `${mb}M`);

/** 3725 → "1h 2m" */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function ago(when: string | number | null | undefined, now = Date.now()): string {
  if (when === null || when === undefined) return "–";
  const t = typeof when === "number" ? when : Date.parse(when);
  if (!Number.isFinite(t)) return "–";
  return `${duration((now - t) / 1000)} ago`;
}

export const percent = (v: number | null | undefined) => (v === null || v === undefined ? "–" : `${v < 100 ? v.toFixed(1) : Math.round(v)}%`);
