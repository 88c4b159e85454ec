// The disk quota of an instance (or a staging task), held by the kernel: its directory is a file system
// of its own, an ext4 image of exactly the quota's size (sparse: the host's disk holds only what is
// written) loop-mounted nodev,nosuid. A write past the quota fails with ENOSPC inside the instance,
// and its use is one statfs away. Needs root, mkfs.ext4 (e2fsprogs) and loop devices; where any is
// missing the agent says at start that disk quotas are only measured.

import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, rmSync, statfsSync } from "node:fs";
import { join } from "node:path";

export interface DiskVolume {
  /** where it is mounted */
  readonly dir: string;
  /** bytes used and the file system's size (a little under the quota: ext4 keeps some for itself) */
  usage(): { usedBytes: number; sizeBytes: number; freeBytes: number } | undefined;
  /** Unmounts it and deletes its image (once nothing runs in it any more). */
  remove(): Promise<void>;
}

export interface DiskVolumes {
  /** Makes an image of `bytes` at `image`, mounts it on `dir` (an existing empty directory), its root owned by `owner`. */
  create(dir: string, image: string, bytes: number, owner?: { uid: number; gid: number }): Promise<DiskVolume>;
  /** Unmounts whatever an earlier run left mounted below `under` and deletes its images; returns how many. */
  sweep(under: string): Promise<number>;
}

/** Below this, ext4 has too little room for its own tables; a smaller quota gets this much. */
export const MIN_VOLUME_BYTES = 8 * 1024 * 1024;

export class DiskVolumeError extends Error {
  override name = "DiskVolumeError";
}

async function run(argv: string[], what: string): Promise<void> {
  const p = Bun.spawn(argv, { stdio: ["ignore", "ignore", "pipe"] });
  const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  if (code !== 0) throw new DiskVolumeError(`${what} failed (${argv[0]} exit ${code}): ${err.trim().slice(0, 300)}`);
}

/** The ext4 image: no journal (the data dies with the instance), no reserved blocks, tables written lazily. */
export function mkfsArgv(image: string, owner?: { uid: number; gid: number }): string[] {
  const ext = ["lazy_itable_init=1", "nodiscard", ...(owner ? [`root_owner=${owner.uid}:${owner.gid}`] : [])];
  return ["mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-m", "0", "-E", ext.join(","), image];
}

/** nodev,nosuid: nothing in an instance's own files can be a device or gain privileges; discard gives freed blocks back to the host. */
export function mountArgv(image: string, dir: string): string[] {
  return ["mount", "-t", "ext4", "-o", "loop,nodev,nosuid,noatime,discard", image, dir];
}

/** Mount points at or below `under`, deepest first (from /proc/self/mountinfo: field 5, octal escapes). */
export function mountsUnder(under: string, mountinfo: string): string[] {
  const prefix = under.endsWith("/") ? under : `${under}/`;
  const out: string[] = [];
  for (const line of mountinfo.split("\n")) {
    const point = line.split(" ")[4];
    if (!point) continue;
    const path = point.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (path === under || path.startsWith(prefix)) out.push(path);
  }
  return out.sort((a, b) => b.split("/").length - a.split("/").length);
}

function volume(dir: string, image: string): DiskVolume {
  let removed = false;
  return {
    dir,
    usage() {
      try {
        const s = statfsSync(dir);
        return { usedBytes: (s.blocks - s.bfree) * s.bsize, sizeBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
      } catch {
        return undefined;
      }
    },
    async remove() {
      if (removed) return;
      removed = true;
      await unmount(dir);
      rmSync(image, { force: true });
    },
  };
}

async function unmount(dir: string): Promise<void> {
  try {
    await run(["umount", dir], "unmounting");
  } catch {
    // busy (a process of it not reaped yet): detach it now, the kernel frees it when the last user goes
    await run(["umount", "-l", dir], "unmounting").catch(() => {});
  }
}

/** Disk volumes where this host can make them (root, mkfs.ext4, mount, a loop device), else undefined with the reason. */
export async function openDiskVolumes(probeDir: string): Promise<{ volumes?: DiskVolumes; reason?: string }> {
  if (process.getuid?.() !== 0) return { reason: "the agent is not root (mounting needs it)" };
  if (!existsSync("/dev/loop-control")) return { reason: "no loop devices (/dev/loop-control)" };
  if (!Bun.which("mkfs.ext4", { PATH: "/usr/sbin:/sbin:/usr/bin:/bin" })) return { reason: "no mkfs.ext4 (apt-get install e2fsprogs)" };
  const volumes: DiskVolumes = {
    async create(dir, image, bytes, owner) {
      const size = Math.max(MIN_VOLUME_BYTES, Math.ceil(bytes / 4096) * 4096);
      rmSync(image, { force: true });
      // sparse: the host's disk holds only the blocks written; 0600 by the agent's umask
      const fd = openSync(image, "wx", 0o600);
      try {
        ftruncateSync(fd, size);
      } finally {
        closeSync(fd);
      }
      try {
        await run(mkfsArgv(image, owner), "making the disk image's file system");
        await run(mountArgv(image, dir), "mounting the disk image");
      } catch (err) {
        rmSync(image, { force: true });
        throw err;
      }
      return volume(dir, image);
    },
    async sweep(under) {
      let n = 0;
      let info = "";
      try {
        info = readFileSync("/proc/self/mountinfo", "utf8");
      } catch {}
      for (const point of mountsUnder(under, info)) {
        await unmount(point);
        n++;
      }
      return n;
    },
  };
  // one real volume, mounted and removed: a host that refuses loop mounts (a container) says so here
  const dir = join(probeDir, ".volume-probe");
  try {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const v = await volumes.create(dir, `${dir}.img`, MIN_VOLUME_BYTES);
    await v.remove();
    return { volumes };
  } catch (err) {
    return { reason: (err as Error).message };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.img`, { force: true });
  }
}
