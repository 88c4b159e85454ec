// Encrypts service credentials and broker passwords at rest: AES-256-GCM (WebCrypto) with a key kept
// outside the database — `<dataDir>/credentials.key` (mode 0600, made on first start) or
// SKIFF_CREDENTIALS_KEY (base64, for controllers and health managers on several hosts). A stolen database
// without the key yields no credentials.

import { randomBytes } from "node:crypto";
import { existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

const PREFIX = "v1:";

export class CredentialBoxError extends Error {
  override name = "CredentialBoxError";
}

export class CredentialBox {
  private constructor(private readonly key: CryptoKey) {}

  /** The key from SKIFF_CREDENTIALS_KEY (base64 of 32 bytes) or `<dataDir>/credentials.key`, made when missing. */
  static async open(opts: { dataDir: string; keyBase64?: string }): Promise<CredentialBox> {
    let raw: Buffer;
    if (opts.keyBase64) raw = Buffer.from(opts.keyBase64, "base64");
    else {
      const path = join(opts.dataDir, "credentials.key");
      if (existsSync(path)) raw = Buffer.from(readFileSync(path, "utf8").trim(), "base64");
      else raw = createKeyFile(path);
    }
    if (raw.length !== 32) throw new CredentialBoxError("the credentials key must be 32 bytes (base64); check SKIFF_CREDENTIALS_KEY or <data dir>/credentials.key");
    return new CredentialBox(await crypto.subtle.importKey("raw", new Uint8Array(raw), "AES-GCM", false, ["encrypt", "decrypt"]));
  }

  async seal(value: unknown): Promise<string> {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, this.key, new TextEncoder().encode(JSON.stringify(value)));
    return `${PREFIX}${Buffer.from(iv).toString("base64")}:${Buffer.from(ct).toString("base64")}`;
  }

  async open<T = unknown>(sealed: string): Promise<T> {
    if (!sealed.startsWith(PREFIX)) throw new CredentialBoxError("not a sealed value");
    const [iv, ct] = sealed.slice(PREFIX.length).split(":");
    try {
      const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: new Uint8Array(Buffer.from(iv!, "base64")) }, this.key, new Uint8Array(Buffer.from(ct!, "base64")));
      return JSON.parse(new TextDecoder().decode(plain)) as T;
    } catch (err) {
      throw new CredentialBoxError("cannot decrypt stored credentials: the credentials key differs from the one they were sealed with", { cause: err });
    }
  }
}

/**
 * Makes the key file, or reads the one another process made first. The key is written whole to a
 * private temporary file and linked into place: link() fails if the name exists, so two processes
 * starting at once never overwrite each other's key, and neither can read a half-written one.
 */
function createKeyFile(path: string): Buffer {
  const raw = randomBytes(32);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  writeFileSync(tmp, raw.toString("base64") + "\n", { mode: 0o600, flag: "wx" });
  try {
    linkSync(tmp, path);
    return raw;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return Buffer.from(readFileSync(path, "utf8").trim(), "base64");
  } finally {
    unlinkSync(tmp);
  }
}
