// Builds droplets in memory for agent tests, in the layout the agent stages: staging_info.json + app/.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { writeTar } from "../../agent/tarball.ts";
import { REPO } from "./harness.ts";

type TarEntry = Parameters<typeof writeTar>[0][number];

export function makeDroplet(files: Record<string, string>, startCommand: string, extra: TarEntry[] = []): Uint8Array {
  const entries: TarEntry[] = [
    { name: "staging_info.json", data: JSON.stringify({ start_command: startCommand, detected_buildpack: "test" }) },
    { name: "app/", type: "5" },
    ...Object.entries(files).map(([name, data]) => ({ name: `app/${name}`, data })),
    ...extra,
  ];
  return new Uint8Array(gzipSync(writeTar(entries)));
}

export const behavioursDroplet = () =>
  makeDroplet({ "app.ts": readFileSync(join(REPO, "agent/fixtures/behaviours/app.ts"), "utf8") }, "bun app.ts");

export const helloDroplet = () =>
  makeDroplet(
    {
      "index.ts": readFileSync(join(REPO, "examples/hello/index.ts"), "utf8"),
      "package.json": readFileSync(join(REPO, "examples/hello/package.json"), "utf8"),
    },
    "bun run start",
  );

/**
 * An instance that ignores SIGTERM and leaves processes everywhere a session kill misses: a setsid
 * grandchild, a double-forked daemon (reparented to init at once), a plain child. Each prints its
 * pid and uid ("leader=N uid=U": in a sandbox N is its PID namespace's number, see hostPid).
 * MODE=crash makes the first process exit by itself after half a second.
 */
export const orphansDroplet = () =>
  makeDroplet(
    {
      "run.sh": [
        "trap '' TERM",
        'echo "leader=$$ uid=$(id -u)"',
        "setsid sh -c 'echo \"grandchild=$$ uid=$(id -u)\"; exec sleep 4242' &",
        "(setsid sh -c 'echo \"daemon=$$ uid=$(id -u)\"; exec sleep 4243' &)",
        "sh -c 'echo \"child=$$ uid=$(id -u)\"; exec sleep 4244' &",
        'if [ "$MODE" = crash ]; then sleep 0.5; exit 3; fi',
        "while true; do sleep 0.2; done",
        "",
      ].join("\n"),
    },
    "sh run.sh",
  );
