#!/usr/bin/env node
// Sets up a machine for skiff, idempotently and quickly when nothing changed: Debian packages,
// npm dependencies (Bun included), the WASM route matcher, the router's Node bundle and the agent's
// native reaper (agent/native/reaper.c).
// Plain Node with no dependencies, because it runs before `npm install` has.
//   node scripts/setup.mjs               everything the cluster and the tests need
//   node scripts/setup.mjs --build-only  only rebuild the WASM, the router bundle and the reaper

import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
// What set-up installs (node_modules, the WASM matcher, the router bundle) is software every instance's
// uid runs (bun) or the router reads, never state: readable by all, whatever umask the caller runs with
// (a component that started it keeps its own state private with umask 077, bus/private-state.ts).
process.umask(0o022);
const args = new Set(process.argv.slice(2));
const t0 = Date.now();
const say = (msg) => process.stdout.write(`setup: ${msg}\n`);

/** Debian packages by what needs them: [command or path that proves it is installed, package]. */
const SYSTEM = [
  ["/usr/sbin/nats-server", "nats-server"],
  ["/usr/bin/tar", "tar"],
  ["/usr/bin/rustc", "rustc"],
  ["/usr/bin/cargo", "cargo"],
  ["/usr/lib/rustlib/wasm32-unknown-unknown", "libstd-rust-dev-wasm32"],
  // rustc links wasm32 with /usr/bin/rust-lld, a symlink to lld-14 that the wasm32 std only
  // recommends: with --no-install-recommends it dangles and the build fails ("rust-lld not found").
  ["/usr/bin/lld-14", "lld-14"],
  ["/usr/bin/wasm-opt", "binaryen"],
  ["/usr/bin/bwrap", "bubblewrap"], // the agent's sandbox per instance and staging task (agent/sandbox.ts)
  // the python buildpack (agent/buildpacks/python.ts): Debian's python3 and its venv module, a venv per droplet
  ["/usr/bin/python3", "python3"],
  ["/usr/share/doc/python3-venv", "python3-venv"],
  ["/usr/lib/python3/dist-packages/pip", "python3-pip"],
  // examples/binary is a C program its test builds (cc -static) before pushing it
  ["/usr/bin/cc", "gcc"],
  ["/usr/include/stdio.h", "libc6-dev"],
  // Real servers behind the service brokers (started by skiff on loopback, never as system services).
  ["/usr/lib/postgresql", "postgresql"],
  ["/usr/bin/redis-server", "redis-server"],
  ["/usr/sbin/mariadbd", "mariadb-server"],
  ["/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server"],
  // The console's browser tests and screenshots drive Debian's Chromium with playwright-core (its own browser download cannot be reached).
  ["/usr/bin/chromium", "chromium"],
];
// The benchmark peers: the test suite runs every bench in --quick mode, so they are always installed.
const BENCH = [
  ["/usr/bin/wrk", "wrk"],
  ["/usr/sbin/nginx", "nginx-light"],
  ["/usr/sbin/haproxy", "haproxy"],
];

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: "inherit", ...opts });
  if (r.status !== 0) {
    console.error(`setup: failed: ${cmd} ${argv.join(" ")} (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

function installSystemPackages(wanted) {
  const missing = wanted.filter(([path]) => !existsSync(path)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  const isRoot = process.getuid?.() === 0;
  const sudo = isRoot ? [] : ["sudo", "-n"];
  if (!isRoot && spawnSync("sudo", ["-n", "true"]).status !== 0) {
    console.error(`setup: these Debian packages are missing and I am not root: ${missing.join(" ")}\n  run: sudo apt-get install -y ${missing.join(" ")}`);
    process.exit(1);
  }
  say(`installing Debian packages: ${missing.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const [c, ...pre] = sudo.length ? sudo : ["apt-get"];
  const aptArgs = (xs) => (sudo.length ? [...pre, "apt-get", ...xs] : xs);
  run(c, aptArgs(["update", "-qq"]), { env });
  run(c, aptArgs(["install", "-y", "-qq", "--no-install-recommends", ...missing]), { env });
}

function hashFiles(paths) {
  const h = createHash("sha256");
  for (const p of paths) if (existsSync(join(root, p))) h.update(readFileSync(join(root, p)));
  return h.digest("hex");
}

function installNpmDependencies() {
  const stamp = join(root, "node_modules", ".skiff-deps");
  const want = hashFiles(["package.json", "package-lock.json"]);
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === want && existsSync(join(root, "node_modules/.bin/bun"))) return;
  say("installing npm dependencies");
  // `npm install` with the committed lock, not `npm ci`: npm ci refuses locks whose optional
  // per-platform packages (cbor-extract's) were resolved on another platform.
  run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"]);
  writeFileSync(stamp, want);
}

/** Newest modification time of the files below `dirs` whose names pass `filter`. */
function newest(dirs, filter = () => true) {
  let t = 0;
  const walk = (d) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name === "node_modules" || e.name === "target" || e.name === "dist") continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (filter(e.name)) t = Math.max(t, statSync(p).mtimeMs);
    }
  };
  for (const d of dirs) walk(join(root, d));
  return t;
}

const mtime = (p) => (existsSync(join(root, p)) ? statSync(join(root, p)).mtimeMs : 0);

function buildWasm() {
  if (!existsSync(join(root, "wasm/build.sh"))) return;
  const out = "wasm/dist/matcher.wasm";
  if (mtime(out) > newest(["wasm"], (n) => n.endsWith(".rs") || n === "Cargo.toml" || n === "build.sh")) return;
  say("building the WASM route matcher");
  run("bash", ["wasm/build.sh"]);
}

function bundleRouter() {
  if (!existsSync(join(root, "router/main.ts"))) return;
  const out = "router/dist/router.mjs";
  if (mtime(out) > newest(["router", "bus"], (n) => n.endsWith(".ts") && !n.endsWith(".test.ts"))) return;
  say("bundling the router for Node");
  run(join(root, "node_modules/.bin/bun"), [
    "build", "router/main.ts", "--target=node", "--format=esm", "--outfile", out, "--external", "uWebSockets.js",
  ]);
}

/** The agent's Node-API module for its sandbox reaper (agent/native/reaper.c; bun:ffi needs the JIT the agent runs without). */
function buildNative() {
  const src = "agent/native/reaper.c";
  if (!existsSync(join(root, src))) return;
  const out = "agent/native/dist/reaper.node";
  if (mtime(out) > mtime(src)) return;
  say("building the agent's native reaper");
  mkdirSync(join(root, "agent/native/dist"), { recursive: true });
  run("cc", ["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", out, src]);
}

if (!args.has("--build-only")) {
  installSystemPackages([...SYSTEM, ...BENCH]);
  installNpmDependencies();
}
buildWasm();
bundleRouter();
buildNative();
say(`ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
