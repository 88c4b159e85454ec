// Parses a Procfile (`type: command` per line), the contract between an app and the platform. Pure.

export function parseProcfile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z0-9_-]+)\s*:\s*(.+)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim();
  }
  return out;
}
