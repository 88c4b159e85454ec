// Parses a Procfile (`type: command` per line), the contract between an app and the platform. Pure.

export function parseProcfile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z0-9_-]+)\s*:\s*(.+)$/.exec(line);
    if (!m) continue;
    // a type named __proto__ stays a process type: a plain assignment would be dropped (issue 19)
    Object.defineProperty(out, m[1]!, { value: m[2]!.trim(), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
