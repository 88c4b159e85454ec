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
});
