import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CredentialBox, CredentialBoxError } from "./credential-box.ts";

const dir = mkdtempSync(join(tmpdir(), "skiff-box-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("CredentialBox", () => {
  test("seals with a fresh IV each time and opens what it sealed", async () => {
    const box = await CredentialBox.open({ dataDir: dir });
    const secret = { uri: "postgres://u:hunter2@h/db", password: "hunter2" };
    const a = await box.seal(secret), b = await box.seal(secret);
    expect(a).toStartWith("v1:");
    expect(a).not.toBe(b);
    expect(a).not.toContain("hunter2");
    expect(await box.open(a)).toEqual(secret);
  });
  test("the key file is made once, 0600, and reused by the next process", async () => {
    expect(statSync(join(dir, "credentials.key")).mode & 0o777).toBe(0o600);
    const sealed = await (await CredentialBox.open({ dataDir: dir })).seal("x");
    expect(await (await CredentialBox.open({ dataDir: dir })).open(sealed)).toBe("x");
  });
  test("another key cannot open it, and says why", async () => {
    const sealed = await (await CredentialBox.open({ dataDir: dir })).seal("x");
    const other = await CredentialBox.open({ dataDir: dir, keyBase64: Buffer.alloc(32, 7).toString("base64") });
    await expect(other.open(sealed)).rejects.toThrow(/credentials key differs/);
    await expect(CredentialBox.open({ dataDir: dir, keyBase64: "c2hvcnQ=" })).rejects.toBeInstanceOf(CredentialBoxError);
  });
  test("processes opening a fresh data directory at once all get the same key, none a half-written one", async () => {
    const script = join(dir, "open-box.ts");
    await Bun.write(script, `import { CredentialBox } from ${JSON.stringify(join(import.meta.dir, "credential-box.ts"))};
const box = await CredentialBox.open({ dataDir: process.argv[2]! });
process.stdout.write(await box.seal("shared"));`);
    for (let trial = 0; trial < 5; trial++) {
      const fresh = join(dir, `fresh-${trial}`);
      const procs = Array.from({ length: 4 }, () => Bun.spawn([process.execPath, script, fresh], { stdout: "pipe", stderr: "pipe" }));
      const sealed = await Promise.all(procs.map(async (p) => {
        const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
        expect(code, err).toBe(0);
        return out;
      }));
      const box = await CredentialBox.open({ dataDir: fresh });
      for (const s of sealed) expect(await box.open(s)).toBe("shared");
    }
  }, 60_000);
});
