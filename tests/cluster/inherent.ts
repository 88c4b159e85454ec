// Which failed requests nobody could save (issue 10). The router answers 502 endpoint_failure both
// when an instance died with the request on it (bytes reached it, so BRIEF forbids a retry) and when
// every attempt failed; a retry that broke would look the same from outside. So a failure counts as
// inherent only when the routers' access logs show it went to the instance or host the fault hit,
// and it was in flight at the fault: sent before the fault and still open when it began, or sent at
// most `graceMs` after the fault was done (the router had not yet read the connection's close).

import type { RequestFailure } from "./load.ts";

/** The fields of one access-log line (router/src/status/access-log.ts, gorouter's format) we need. */
export interface AccessLine {
  target: string;
  status: number;
  /** "ip:port" of the endpoint the router last sent the request to; "-" when none */
  endpoint: string;
  routerError: string;
}

const LINE = /^\S+ - \[[^\]]+\] "\S+ (\S+) HTTP\/1\.1" (\d+) \d+ \d+ "[^"]*" "[^"]*" "[^"]*" "([^"]*)" .* x_cf_routererror:"([^"]*)"$/;

/** Parses access-log text; lines of another shape are skipped (and counted, so a format change shows). */
export function parseAccessLog(text: string): { lines: AccessLine[]; unparsed: number } {
  const lines: AccessLine[] = [];
  let unparsed = 0;
  for (const raw of text.split("\n")) {
    if (!raw) continue;
    const m = LINE.exec(raw);
    if (!m) {
      unparsed++;
      continue;
    }
    lines.push({ target: m[1]!, status: Number(m[2]), endpoint: m[3]!, routerError: m[4] === "-" ? "" : m[4]! });
  }
  return { lines, unparsed };
}

export interface Fault {
  /** load-loop clock (ms): when the fault began and when the command that made it returned */
  at: number;
  done: number;
  /** does this endpoint ("ip:port") belong to what the fault hit? */
  hits: (endpoint: string) => boolean;
  /** the answer an inherent failure gets from the router */
  status: number;
  routerError: string;
  /** how long after the fault a request may still have been sent into it unknowingly */
  graceMs: number;
}

/** The failures that were sent into the fault (see the file comment); the rest are the router's to save. */
export function inherentFailures(failures: RequestFailure[], access: AccessLine[], fault: Fault): RequestFailure[] {
  const byTarget = new Map<string, AccessLine[]>();
  for (const l of access) {
    const list = byTarget.get(l.target);
    if (list) list.push(l);
    else byTarget.set(l.target, [l]);
  }
  return failures.filter((f) => {
    if (f.status !== fault.status || f.routerError !== fault.routerError) return false;
    if (f.end < fault.at || f.at > fault.done + fault.graceMs) return false;
    const lines = byTarget.get(f.target) ?? [];
    return lines.some((l) => l.status === fault.status && l.routerError === fault.routerError && fault.hits(l.endpoint));
  });
}
