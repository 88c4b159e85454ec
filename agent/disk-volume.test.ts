// An instance's disk quota as a file system of its own (issue 25): the commands that make it, the
// leftovers a restart finds, and (as root with loop devices) a real volume that refuses a write past it.

import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mkfsArgv, mountArgv, mountsUnder, openDiskVolumes } from "./disk-volume.ts";

test("ext4 without a journal or reserved blocks, its root the instance's; mounted nodev,nosuid", () => {
  expect(mkfsArgv("/d/i.img", { uid: 40001, gid: 40001 })).toEqual(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-m", "0", "-E", "lazy_itable_init=1,nodiscard,root_owner=40001:40001", "/d/i.img"]);
  expect(mountArgv("/d/i.img", "/d/i")).toEqual(["mount", "-t", "ext4", "-o", "loop,nodev,nosuid,noatime,discard", "/d/i.img", "/d/i"]);
});

test("the mounts an earlier run left below a directory, deepest first", () => {
  const info = [
    "22 1 8:1 / / rw - ext4 /dev/vda rw",
    "90 22 7:0 / /srv/agent/instances/a rw - ext4 /dev/loop0 rw",
    "91 22 7:1 / /srv/agent/instances/b\\040c rw - ext4 /dev/loop1 rw",
    "92 90 7:2 / /srv/agent/instances/a/x rw - ext4 /dev/loop2 rw",
    "93 22 7:3 / /srv/agent/instances-other rw - ext4 /dev/loop3 rw",
  ].join("\n");
  expect(mountsUnder("/srv/agent/instances", info)).toEqual(["/srv/agent/instances/a/x", "/srv/agent/instances/a", "/srv/agent/instances/b c"]);
});

describe.if(process.getuid?.() === 0)("a real volume", () => {
  test("holds its quota: a write past it fails with ENOSPC, and statfs tells its use; removed, nothing is left", async () => {
    const base = mkdtempSync(join(tmpdir(), "skiff-volume-"));
    try {
      const { volumes, reason } = await openDiskVolumes(base);
      if (!volumes) return console.warn(`skipped: ${reason}`);
      const dir = join(base, "i1");
      mkdirSync(dir);
      const v = await volumes.create(dir, `${dir}.img`, 16 << 20, { uid: 40999, gid: 40999 });
      expect(statSync(dir).uid).toBe(40999);
      expect(v.usage()!.sizeBytes).toBeLessThanOrEqual(16 << 20);
      writeFileSync(join(dir, "half"), new Uint8Array(6 << 20));
      expect(v.usage()!.usedBytes).toBeGreaterThanOrEqual(6 << 20);
      expect(() => writeFileSync(join(dir, "too-much"), new Uint8Array(16 << 20))).toThrow(/ENOSPC/);
      // the image is sparse: the host's disk holds what was written, not the quota
      expect(statSync(`${dir}.img`).blocks * 512).toBeLessThan(16 << 20);
      await v.remove();
      expect(mountsUnder(base, await Bun.file("/proc/self/mountinfo").text())).toEqual([]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
