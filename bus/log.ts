// The one logger every component uses: `level component message key=value…` on stdout/stderr.
// Cheap when a level is off; never throws.

export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

function formatValue(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === "string") return /^[\w./:@-]*$/.test(v) && v !== "" ? v : JSON.stringify(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

export function createLogger(component: string, level: LogLevel = envLevel()): Logger {
  const min = ORDER[level];
  const write = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    let line = `${lvl.padEnd(5)} ${component}: ${msg}`;
    if (fields) for (const k in fields) line += ` ${k}=${formatValue(fields[k])}`;
    (ORDER[lvl] >= ORDER.warn ? process.stderr : process.stdout).write(line + "\n");
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (name) => createLogger(`${component}.${name}`, level),
  };
}

function envLevel(): LogLevel {
  const v = (typeof process !== "undefined" && process.env.SKIFF_LOG_LEVEL) || "info";
  return v in ORDER ? (v as LogLevel) : "info";
}

/** A logger that keeps lines in memory, for tests that assert on what was logged. */
export function memoryLogger(lines: string[] = []): Logger & { lines: string[] } {
  const make = (component: string): Logger => {
    const write = (lvl: string) => (msg: string, fields?: Record<string, unknown>) => {
      lines.push(`${lvl} ${component}: ${msg}${fields ? " " + JSON.stringify(fields) : ""}`);
    };
    return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error"), child: (n) => make(`${component}.${n}`) };
  };
  return Object.assign(make("test"), { lines });
}
