// A bench stopped from outside (Ctrl-C, kill) stops what it started before it exits: without this,
// Bun exits at once on SIGINT/SIGTERM and the proxies, routers, NATS servers and wrk it spawned stay.

export function stopOnSignals(cleanUp: () => Promise<unknown> | unknown): void {
  for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const)
    process.on(sig, () => {
      void Promise.resolve()
        .then(cleanUp)
        .catch(() => {})
        .finally(() => process.exit(code));
    });
}
