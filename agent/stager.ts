// Stages an app package into a droplet: download the package, unpack it safely, pick a buildpack,
// compile, decide the start command, pack `app/` + `staging_info.json` into a gzip tarball and PUT it
// to the controller. Every step's output goes to the staging log; the whole task has a timeout. Build
// commands run as the task's own uid, in the task's cgroup (memory, pids, CPU shares) and, where the
// agent has one, in a sandbox that sees the app being built (its only output) and nothing of the host
// but the system's read-only files; the task's files sit on a disk volume of its quota's size.

import { chmodSync, closeSync, lchownSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { traverseOnlyDir } from "../bus/private-state.ts";
import type { Subprocess } from "bun";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { Logger, StagingReply, StagingStart } from "../bus/index.ts";
import { chooseStartCommand, selectBuildpack, type AppSnapshot, type Buildpack, type PackageJson } from "./buildpacks/index.ts";
import type { DropletCache } from "./droplet-cache.ts";
import { download, sha256File } from "./droplet-cache.ts";
import { LineSplitter, relayLines } from "./log-buffer.ts";
import { readRegularFile } from "./no-follow.ts";
import { signalName } from "./exit-description.ts";
import { parseProcfile } from "./procfile.ts";
import { killScope, type ProcessScope } from "./process-sweep.ts";
import { cpuSharesFor, type InstanceCgroup, type InstanceCgroups } from "./instance-cgroup.ts";
import type { DiskVolume, DiskVolumes } from "./disk-volume.ts";
import { gatedArgv } from "./instance-env.ts";
import { hostnameOf, IN_SANDBOX, signalFromSandboxStatus, stagingSandbox, type SandboxHost } from "./sandbox.ts";
import { sandboxLaunch, writeSandboxEtc } from "./sandbox-host.ts";
import type { InstanceUsers, RunAsUser } from "./run-as.ts";
import type { StagingInfo } from "./instance-runner.ts";
import { extractTarGzFile } from "./tarball.ts";

/** The environment entry every build process of a task inherits, to find its daemons. */
const STAGING_TAG = "SKIFF_STAGING_TASK";

export interface StagerDeps {
  workDir: string;
  droplets: DropletCache;
  buildpacks: readonly Buildpack[];
  staticServerPath: string;
  bunPath: string;
  pathPrefix: string[];
  maxArchiveBytes: number;
  timeoutMs: number;
  users: InstanceUsers;
  cgroups?: InstanceCgroups;
  memoryInCgroup?: boolean;
  pidsMax?: number;
  /** undefined: build commands run without a sandbox */
  sandbox?: SandboxHost;
  /** undefined: the task's disk is not limited */
  volumes?: DiskVolumes;
  /** the task's memory and disk limits */
  memoryMb: number;
  diskMb: number;
  stack: string;
  log: Logger;
  /** aborts the task (the agent is stopping) */
  cancel?: AbortSignal;
  /** one line of the staging log, published on logs.<app> with source STG */
  onLog(appId: string, stream: "out" | "err", line: string): void;
}

export class StagingError extends Error {
  override name = "StagingError";
}

export type StagingDone = StagingReply & { phase: "done" };

/**
 * Reads the app's top level once: what buildpack detection looks at. The agent reads as root, so
 * package.json and Procfile must be regular files (a link would let the app make root read any file).
 */
export function snapshotApp(dir: string): AppSnapshot {
  const files = new Set(readdirSync(dir));
  let packageJson: PackageJson | undefined;
  const read = (name: string) => {
    try {
      return readRegularFile(join(dir, name), `the app's ${name}`);
    } catch (err) {
      throw new StagingError((err as Error).message);
    }
  };
  const pkgText = files.has("package.json") ? read("package.json") : undefined;
  if (pkgText !== undefined) {
    try {
      packageJson = JSON.parse(pkgText) as PackageJson;
    } catch (err) {
      throw new StagingError(`package.json is not valid JSON: ${(err as Error).message}`);
    }
  }
  const procfileText = files.has("Procfile") ? read("Procfile") : undefined;
  const procfile = procfileText === undefined ? undefined : parseProcfile(procfileText);
  return { files, packageJson, procfile };
}

/** Runs one staging task to its `done` reply (with `error` on failure). Never throws. */
export async function stage(req: StagingStart, deps: StagerDeps): Promise<StagingDone> {
  const taskDir = join(deps.workDir, req.task_id.replace(/[^A-Za-z0-9_.-]/g, "_"));
  const abort = new AbortController();
  let why = `staging timed out after ${Math.round(deps.timeoutMs / 1000)} s`;
  const timer = setTimeout(() => abort.abort(), deps.timeoutMs);
  const onCancel = () => {
    why = "staging was cancelled: the agent is stopping";
    abort.abort();
  };
  deps.cancel?.addEventListener("abort", onCancel);
  const say = (line: string, stream: "out" | "err" = "out") => deps.onLog(req.app_id, stream, line);
  const started = Date.now();
  let user: RunAsUser | undefined;
  const taskTag = randomUUID();
  const task: TaskLimits = {};
  try {
    user = deps.users.acquire();
    const result = await Promise.race([
      runStaging(req, deps, user, taskTag, taskDir, task, abort.signal, say),
      new Promise<never>((_, reject) =>
        abort.signal.addEventListener("abort", () => reject(new StagingError(why))),
      ),
    ]);
    say(`staging done in ${Date.now() - started} ms: buildpack ${result.detected_buildpack}, start command "${result.detected_start_command}"`);
    return result;
  } catch (err) {
    const message = (err as Error).message;
    say(`staging failed: ${message}`, "err");
    return { task_id: req.task_id, phase: "done", error: message };
  } finally {
    clearTimeout(timer);
    deps.cancel?.removeEventListener("abort", onCancel);
    abort.abort();
    // nothing the build started may outlive the task; its uid is free again only once that holds
    const left = await killScope({ leader: 0, tag: { key: STAGING_TAG, value: taskTag }, cgroup: task.cgroup, exclusiveUser: user?.exclusive ? user : undefined });
    if (user && left.length === 0) deps.users.release(user);
    if (left.length > 0) deps.log.error("build processes survived SIGKILL; their uid stays taken", { task: req.task_id, pids: left.join(",") });
    task.cgroup?.remove();
    try {
      await task.volume?.remove();
    } catch (err) {
      deps.log.warn("could not unmount a staging task's disk volume", { task: req.task_id, error: (err as Error).message });
    }
    for (const d of [taskDir, `${taskDir}.img`, `${taskDir}.etc`]) rmSync(d, { recursive: true, force: true });
  }
}

/** What a task holds while it runs, released when it ends. */
interface TaskLimits {
  cgroup?: InstanceCgroup;
  volume?: DiskVolume;
}

async function runStaging(
  req: StagingStart,
  deps: StagerDeps,
  user: RunAsUser | undefined,
  taskTag: string,
  taskDir: string,
  task: TaskLimits,
  signal: AbortSignal,
  say: (line: string, stream?: "out" | "err") => void,
): Promise<StagingDone> {
  const appDir = join(taskDir, "app");
  rmSync(taskDir, { recursive: true, force: true });
  mkdirSync(taskDir, { recursive: true });
  // the task's disk: everything below taskDir (the package, the app, the build's cache, the droplet)
  if (deps.volumes && deps.diskMb > 0) {
    task.volume = await deps.volumes.create(taskDir, `${taskDir}.img`, deps.diskMb * 1024 * 1024);
    // the task may have timed out meanwhile, its clean-up done: nothing else would unmount this one
    if (signal.aborted) await task.volume.remove();
  }
  mkdirSync(join(taskDir, "home"), { recursive: true });
  const owner = user ? { uid: user.uid, gid: user.gid } : undefined;
  if (deps.cgroups)
    try {
      task.cgroup = deps.cgroups.create(`staging-${taskDir.split("/").pop()}`, {
        memoryBytes: deps.memoryInCgroup === false ? undefined : deps.memoryMb * 1024 * 1024,
        pids: deps.pidsMax || undefined,
        cpuShares: cpuSharesFor(deps.memoryMb),
      });
    } catch (err) {
      deps.log.warn("no cgroup for a staging task; its build runs without limits", { task: req.task_id, error: (err as Error).message });
    }
  const sandbox = deps.sandbox && {
    host: deps.sandbox,
    taskId: req.task_id,
    etcDir: writeSandboxEtc(`${taskDir}.etc`, owner?.uid ?? process.getuid?.() ?? 0, owner?.gid ?? process.getgid?.() ?? 0, hostnameOf(`staging-${req.task_id}`)),
  };
  // the build's uid passes through staging/ and the task dir to app/ and home/, and lists nothing
  if (owner) for (const d of [deps.workDir, taskDir]) traverseOnlyDir(d, "the agent's staging directory");

  say("downloading the app package");
  const res = await fetch(req.download_uri, { signal }).catch((err) => {
    throw new StagingError(`could not download the app package: ${(err as Error).message}`);
  });
  if (!res.ok) throw new StagingError(`downloading the app package answered ${res.status}`);
  // streamed to a file in the (root's) task dir, then unpacked from it: never held whole in memory
  const pkgPath = join(taskDir, "package.tgz");
  await download(res, pkgPath, deps.maxArchiveBytes, "app package").catch((err) => {
    throw new StagingError((err as Error).message);
  });
  const unpacked = await extractTarGzFile(pkgPath, appDir, { maxBytes: deps.maxArchiveBytes, owner });
  rmSync(pkgPath);
  // The task dir stays root's: the build user owns app/ and home/ only, so it can never swap app/,
  // staging_info.json or droplet.tgz (which root writes and packs) for a link.
  if (owner)
    for (const d of [appDir, join(taskDir, "home")]) {
      lchownSync(d, owner.uid, owner.gid);
      if (user?.exclusive) chmodSync(d, 0o700); // the app's source is its own while it builds
    }
  say(`unpacked ${unpacked.files} files (${unpacked.bytes} bytes)`);

  const app = { ...snapshotApp(appDir), startCommand: req.properties.start_command || undefined };
  const buildpack = selectBuildpack(deps.buildpacks, app, req.properties.buildpack || undefined);
  say(`buildpack: ${buildpack.name}`);
  await buildpack.compile(app, {
    dir: appDir,
    log: (line) => say(line),
    bunPath: sandbox ? `${IN_SANDBOX.bin}/bun` : deps.bunPath,
    staticServerPath: deps.staticServerPath,
    run: (argv, what) =>
      runCommand(argv, what, { taskTag, cwd: appDir, home: join(taskDir, "home"), env: req.properties.env ?? {}, user, signal, say, pathPrefix: deps.pathPrefix, cgroup: task.cgroup, memoryMb: deps.memoryMb, sandbox }),
  });
  const startCommand = chooseStartCommand(req.properties.start_command, app, buildpack);
  // every process type the droplet can run: the Procfile's, and web (the start command)
  const processTypes = processTypesOf(app, startCommand);
  const info: StagingInfo = { start_command: startCommand, detected_buildpack: buildpack.name, stack: deps.stack, staged_at: new Date().toISOString(), process_types: processTypes };
  writeFileSync(join(taskDir, "staging_info.json"), JSON.stringify(info, null, 2) + "\n", { flag: "wx" });

  const dropletPath = join(taskDir, "droplet.tgz");
  await runCommand(["tar", "-czf", dropletPath, "--owner=0", "--group=0", "--numeric-owner", "-C", taskDir, "staging_info.json", "app"], "packing the droplet", {
    taskTag,
    cwd: taskDir,
    home: taskDir,
    env: {},
    signal,
    say,
    pathPrefix: deps.pathPrefix,
  });
  const sha = await sha256File(dropletPath);
  say(`droplet: ${statSync(dropletPath).size} bytes, sha256 ${sha}`);

  const put = await fetch(req.upload_uri, {
    method: "PUT",
    body: Bun.file(dropletPath), // streamed from disk
    headers: { "content-type": "application/gzip" },
    signal,
  }).catch((err) => {
    throw new StagingError(`could not upload the droplet: ${(err as Error).message}`);
  });
  const answer = (await put.json().catch(() => ({}))) as { sha256?: string };
  if (put.status !== 201 && put.status !== 200) throw new StagingError(`uploading the droplet answered ${put.status}`);
  if (answer.sha256 && answer.sha256 !== sha) throw new StagingError(`the controller stored the droplet with sha256 ${answer.sha256}, expected ${sha}`);
  deps.droplets.putFile(sha, dropletPath);
  return { task_id: req.task_id, phase: "done", detected_buildpack: buildpack.name, droplet_sha: sha, detected_start_command: startCommand, process_types: processTypes };
}

/** The droplet's process types: the Procfile's (valid names only), with web set to the start command. */
export function processTypesOf(app: AppSnapshot, startCommand: string): Record<string, string> {
  const types: Record<string, string> = {};
  for (const [type, command] of Object.entries(app.procfile ?? {}))
    // defined, not assigned: a type named __proto__ stays a type (issue 19)
    if (/^[A-Za-z0-9_-]{1,63}$/.test(type) && command.length <= 4096) Object.defineProperty(types, type, { value: command, enumerable: true, writable: true, configurable: true });
  types.web = startCommand;
  return types;
}

interface RunOptions {
  /** unique per task and command: STAGING_TAG's value */
  taskTag: string;
  cwd: string;
  home: string;
  env: Record<string, string>;
  /** the build user (undefined: the agent's own) */
  user?: RunAsUser;
  signal: AbortSignal;
  say: (line: string, stream?: "out" | "err") => void;
  pathPrefix: string[];
  /** the task's cgroup: the command starts behind the gate and is moved in first */
  cgroup?: InstanceCgroup;
  memoryMb?: number;
  /** build commands only: the sandbox (the packing, which the agent does itself, runs outside) */
  sandbox?: { host: SandboxHost; taskId: string; etcDir: string };
}

/**
 * Runs a build command in its own session, streaming its output to the staging log. When it ends
 * (or the task is aborted), every process it started is killed: a daemon an install script left
 * behind must not outlive the task (process-sweep.ts).
 */
async function runCommand(argv: string[], what: string, o: RunOptions): Promise<void> {
  if (o.signal.aborted) throw new StagingError(`${what} was cancelled`);
  let child;
  // inside the sandbox the build sees /home/vcap/app and a /tmp of its own (the task's home/)
  const home = o.sandbox ? IN_SANDBOX.tmp : o.home;
  let full = argv;
  let argsFd: number | undefined;
  if (o.sandbox) {
    const s = o.sandbox;
    const box = stagingSandbox(s.host, { taskId: s.taskId, appDir: o.cwd, scratchDir: o.home, shmBytes: (o.memoryMb ?? 64) * 1024 * 1024, etcDir: s.etcDir, argv });
    const launch = sandboxLaunch(s.host.bwrap, box, join(s.etcDir, `bwrap-args-${o.taskTag}`));
    full = launch.argv;
    argsFd = launch.fd;
  }
  try {
    child = Bun.spawn(o.cgroup ? gatedArgv(full) : full, {
      cwd: o.cwd,
      env: {
        ...o.env,
        PATH: o.sandbox ? IN_SANDBOX.path : [...o.pathPrefix, process.env.PATH ?? "/usr/bin:/bin"].join(":"),
        HOME: home,
        TMPDIR: home,
        npm_config_cache: join(home, ".npm"),
        CI: "true",
        [STAGING_TAG]: o.taskTag,
      },
      detached: true,
      stdio: argsFd === undefined ? [o.cgroup ? "pipe" : "ignore", "pipe", "pipe"] : [o.cgroup ? "pipe" : "ignore", "pipe", "pipe", argsFd],
      uid: o.user?.uid,
      gid: o.user?.gid,
    }) as Subprocess<"pipe" | "ignore", "pipe", "pipe">;
  } catch (err) {
    throw new StagingError(`${what} could not run: ${(err as Error).message}`);
  } finally {
    if (argsFd !== undefined) closeSync(argsFd);
  }
  if (o.cgroup) {
    const stdin = child.stdin as import("bun").FileSink;
    try {
      await o.cgroup.addProcess(child.pid);
    } catch {
      // the gate opens anyway: the uid and the tag still find every process it starts
    }
    try {
      stdin.write("\n");
      void stdin.end();
    } catch {
      // it died already: its exit is reported
    }
  }
  const scope: ProcessScope = {
    leader: child.pid,
    tag: { key: STAGING_TAG, value: o.taskTag },
    cgroup: o.cgroup,
    exclusiveUser: o.user?.exclusive ? o.user : undefined,
  };
  const onAbort = () => void killScope(scope);
  o.signal.addEventListener("abort", onAbort);
  // not awaited: a daemon the build left behind may hold the pipes open; the exit decides
  for (const stream of ["out", "err"] as const) void relayLines(stream === "out" ? child.stdout : child.stderr, new LineSplitter((line) => o.say(line, stream)));
  try {
    const code = await child.exited;
    const sig = signalName(child.signalCode) ?? (o.sandbox ? signalName(signalFromSandboxStatus(code) ?? null) : null);
    if (o.cgroup?.oomKilled()) throw new StagingError(`${what} failed (out of memory: over the ${o.memoryMb} MB staging limit)`);
    if (code !== 0 || sig) throw new StagingError(`${what} failed (${sig ? `killed by ${sig}` : `exit status ${code}`})`);
  } finally {
    o.signal.removeEventListener("abort", onAbort);
    await killScope(scope);
  }
}
