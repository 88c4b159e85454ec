// The peers of the router bench at a given number of workers, and how each is measured: nginx
// (worker_processes W, each worker with its own listen socket: `reuseport`, as skiff's workers have),
// HAProxy (nbthread W) and CPU lists for pinning. A proxy of W workers is pinned to the first W CPUs
// of the proxy list (all of it when it is shorter): on a machine with more cores than wrk needs, each
// worker gets a core; on this 2-core machine the second worker shares the load generator's core.

import { readdirSync, readFileSync } from "node:fs";

/** "0-3,6" → [0, 1, 2, 3, 6] */
export function parseCpuList(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`not a CPU list: ${spec} (e.g. 0-3,6)`);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    for (let c = a; c <= b; c++) if (!out.includes(c)) out.push(c);
  }
  if (out.length === 0) throw new Error(`an empty CPU list: ${spec}`);
  return out;
}

/** The CPUs a proxy of `workers` workers is pinned to: the first `workers` of `proxyCpus`, or all of them. */
export function pinFor(workers: number, proxyCpus: readonly number[]): string {
  return proxyCpus.slice(0, Math.max(1, Math.min(workers, proxyCpus.length))).join(",");
}

/** The default proxy CPUs: every CPU wrk and the backend do not use, then (to reach `want`) theirs too. */
export function defaultProxyCpus(all: number, load: readonly number[], want: number): number[] {
  const free = Array.from({ length: all }, (_, c) => c).filter((c) => !load.includes(c));
  return free.length >= want ? free : [...free, ...load.filter((c) => !free.includes(c))];
}

/** worker counts 1, 2, 4, … up to n, and n itself */
export function doublingsUpTo(n: number): number[] {
  const out: number[] = [];
  for (let w = 1; w < n; w *= 2) out.push(w);
  out.push(n);
  return out;
}

export function nginxConf(dir: string, port: number, backendPort: number, workers: number): string {
  // One worker: no master process, as every classic table of this bench measured it. More: the master
  // and a listen socket per worker (reuseport: the kernel spreads connections, as over skiff's workers).
  return `worker_processes ${workers}; daemon off; master_process ${workers > 1 ? "on" : "off"}; pid ${dir}/nginx-${port}.pid; error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${dir}/ngx-body; proxy_temp_path ${dir}/ngx-proxy; fastcgi_temp_path ${dir}/ngx-fcgi; uwsgi_temp_path ${dir}/ngx-uwsgi; scgi_temp_path ${dir}/ngx-scgi;
  client_max_body_size 1g; proxy_request_buffering off;
  upstream backend { server 127.0.0.1:${backendPort}; keepalive 512; }
  server { listen 127.0.0.1:${port}${workers > 1 ? " reuseport" : ""}; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_buffering on; } } }`;
}

export function haproxyConf(port: number, backendPort: number, threads: number): string {
  return `global
  nbthread ${threads}
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option forwardfor
  http-reuse always
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  server s1 127.0.0.1:${backendPort}
`;
}

/** The process and its children (nginx's workers): threads are counted in their process already. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** utime and stime in clock ticks, summed over `pids` (fields 14 and 15 of /proc/<pid>/stat) */
export function cpuTicks(pids: readonly number[]): [number, number] {
  let user = 0;
  let sys = 0;
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      user += Number(f[11]);
      sys += Number(f[12]);
    } catch {
      // an exited child
    }
  }
  return [user, sys];
}

/** resident MiB summed over `pids` */
export function rssMiB(pids: readonly number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      kib += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // an exited child
    }
  }
  return Math.round(kib / 1024);
}
