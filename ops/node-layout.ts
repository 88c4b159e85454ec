// Every path skiff-node uses on a host, in one place (piku-style). `root` is "/" on a real host; the
// netns test cluster gives each of its hosts a folder of its own, since they share one file system.

import { join, resolve } from "node:path";

export function nodeLayout(root = "/") {
  const r = resolve(root);
  const etc = join(r, "etc/skiff");
  return {
    root: r,
    etc,
    /** this host's membership: registrar URL, CA pin, name, address, roles, node secret (0600) */
    nodeFile: join(etc, "node.json"),
    caFile: join(etc, "ca.pem"),
    certFile: join(etc, "host.pem"),
    keyFile: join(etc, "host.key"),
    envFile: (component: string) => join(etc, `${component}.env`),
    /** a role's NATS user: its JWT and seed, as nats.js reads a .creds file (0600) */
    credsFile: (role: string) => join(etc, `${role}.creds`),
    natsConfig: join(etc, "nats.conf"),
    unitDir: join(r, "etc/systemd/system"),
    unitFile: (component: string) => join(r, "etc/systemd/system", unitName(component)),
    wantsDir: join(r, "etc/systemd/system/multi-user.target.wants"),
    stateDir: (component: string) => join(r, "var/lib/skiff", component),
    registrarDir: join(r, "var/lib/skiff/registrar"),
    runDir: join(r, "run/skiff"),
    supervisorSocket: join(r, "run/skiff/supervisor.sock"),
    logDir: join(r, "var/log/skiff"),
  };
}

export type NodeLayout = ReturnType<typeof nodeLayout>;

export const unitName = (component: string): string => `skiff-${component}.service`;
