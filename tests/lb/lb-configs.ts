// The load-balancer configurations of docs/load-balancers.md, read from the doc itself so the tests run
// exactly the text a user copies: each block is the fenced block after a `<!-- tested-config: NAME -->`
// line. Only the addresses, ports and certificate paths are replaced with the test's own.

import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const repoRoot = resolve(import.meta.dir, "../..");
export const LB_DOC = join(repoRoot, "docs/load-balancers.md");

/** The names of the doc's tested blocks, in the doc's order. */
export function docConfigNames(doc = readFileSync(LB_DOC, "utf8")): string[] {
  return [...doc.matchAll(/^<!-- tested-config: ([\w-]+) -->$/gm)].map((m) => m[1]!);
}

/** The text of one tested block, as the doc shows it. */
export function docConfig(name: string, doc = readFileSync(LB_DOC, "utf8")): string {
  const at = doc.indexOf(`<!-- tested-config: ${name} -->\n`);
  if (at < 0) throw new Error(`docs/load-balancers.md has no tested-config block named ${name}`);
  const m = /^```[\w-]*\n([\s\S]*?)^```$/m.exec(doc.slice(at));
  if (!m) throw new Error(`the tested-config block ${name} has no fenced block after it`);
  return m[1]!;
}

/** Where the test runs a front end: its ports, the routers' ports, and its certificate files. */
export interface Placement {
  listen: number;
  tlsListen?: number;
  routers: { port: number; statusPort: number }[];
  tls?: { cert: string; key: string; pem: string };
}

/** The doc's example addresses: router N is 10.0.5.1N, proxy port 8080, status port 8081. */
const DOC_ROUTER = (i: number) => `10.0.5.1${i + 1}`;

/**
 * Puts a doc block on the test's ports. Line by line, so that a router's status port (`check port
 * 8081`) is replaced on its own server line; anything of the doc's addresses left over is an error.
 */
export function placeConfig(text: string, where: Placement): string {
  const out = text.split("\n").map((line) => {
    let l = line;
    where.routers.forEach((r, i) => {
      if (!l.includes(`${DOC_ROUTER(i)}:8080`)) return;
      l = l.replace(`${DOC_ROUTER(i)}:8080`, `127.0.0.1:${r.port}`).replace(/\bport 8081\b/, `port ${r.statusPort}`);
    });
    l = l.replace(/^(\s*)listen 80;/, `$1listen 127.0.0.1:${where.listen};`).replace(/^(\s*)bind :80$/, `$1bind 127.0.0.1:${where.listen}`);
    if (/listen 443 ssl;|bind :443 ssl/.test(l)) {
      if (where.tlsListen === undefined || where.tls === undefined) return ""; // a test without TLS leaves the TLS lines out
      l = l.replace("listen 443 ssl;", `listen 127.0.0.1:${where.tlsListen} ssl;`).replace(/bind :443 ssl crt \S+/, `bind 127.0.0.1:${where.tlsListen} ssl crt ${where.tls.pem}`);
    }
    if (/ssl_certificate(_key)?\s/.test(l)) {
      if (where.tls === undefined) return "";
      l = l.replace("/etc/nginx/tls/lb.crt", where.tls.cert).replace("/etc/nginx/tls/lb.key", where.tls.key);
    }
    return l;
  });
  const placed = out.join("\n");
  const left = /10\.0\.5\.\d+|\/etc\/(nginx|haproxy)|\blisten 80;|\bbind :80\b/.exec(placed);
  if (left) throw new Error(`placeConfig left the doc's ${left[0]} in:\n${placed}`);
  return placed;
}

/** An nginx main context around a doc block (which is the http { … } context's content). */
export function nginxMainConfig(httpBlock: string, dir: string): string {
  return [
    "worker_processes 1;",
    "daemon off;",
    "master_process off;",
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    "events { worker_connections 4096; }",
    "http {",
    "    access_log off;",
    `    client_body_temp_path ${dir}/client-body;`,
    `    proxy_temp_path ${dir}/proxy;`,
    httpBlock,
    "}",
    "",
  ].join("\n");
}
