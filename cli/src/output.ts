// Where the CLI writes: messages to stdout, warnings and errors to stderr, progress only on a TTY.

import { logTag } from "../../bus/log-tag.ts";

export interface Out {
  tty: boolean;
  say(line: string): void;
  warn(line: string): void;
  progress(line: string): void;
  progressDone(line: string): void;
}

export function terminalOut(): Out {
  const tty = !!process.stdout.isTTY;
  return {
    tty,
    say: (l) => process.stdout.write(l + "\n"),
    warn: (l) => process.stderr.write(`warning: ${l}\n`),
    progress: (l) => process.stdout.write(`\r${l}`),
    progressDone: (l) => process.stdout.write((tty ? "\r\x1b[K" : "") + l + "\n"),
  };
}

export interface LogLineJson {
  source: string;
  index: number;
  stream: string;
  ts: number;
  line: string;
  process_type?: string;
  task?: string;
}

export function formatLine(l: LogLineJson): string {
  return `   ${new Date(l.ts).toISOString()} [${logTag(l)}] ${l.stream === "err" ? "ERR" : "OUT"} ${l.line}`;
}
