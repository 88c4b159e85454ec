// The cluster's certificate authority (issue 27), made with the openssl CLI from Debian (Node and Bun
// have no X.509 builder): one CA per cluster, kept on the first controller host; every host gets a key
// it made itself and a certificate for its addresses, good as a TLS server and as a client (mutual TLS).

import { spawnSync } from "node:child_process";
import { createHash, randomBytes, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export class CertificateError extends Error {
  override name = "CertificateError";
}

function openssl(args: string[], input?: string): string {
  const r = spawnSync("openssl", args, { encoding: "utf8", input });
  if (r.error) throw new CertificateError(`openssl is needed to make certificates (apt-get install openssl): ${r.error.message}`);
  if (r.status !== 0) throw new CertificateError(`openssl ${args[0]} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

function scratch<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "skiff-ca-"));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface KeyPair {
  keyPem: string;
  certPem: string;
}

/** A new CA: an EC P-256 key and a self-signed certificate, 10 years. */
export function createCa(name: string, days = 3650): KeyPair {
  return scratch((d) => {
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(d, "ca.key"), "-out", join(d, "ca.pem"),
      "-days", String(days), "-subj", `/O=skiff/CN=${name}`, "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    return { keyPem: readFileSync(join(d, "ca.key"), "utf8"), certPem: readFileSync(join(d, "ca.pem"), "utf8") };
  });
}

/** A host's key and certificate request: the key never leaves the host. */
export function createKeyAndCsr(commonName: string): { keyPem: string; csrPem: string } {
  return scratch((d) => {
    openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(d, "k"), "-out", join(d, "csr"), "-subj", `/O=skiff/CN=${commonName}`]);
    return { keyPem: readFileSync(join(d, "k"), "utf8"), csrPem: readFileSync(join(d, "csr"), "utf8") };
  });
}

export interface SignRequest {
  csrPem: string;
  /** the certificate's names: the CA decides them, whatever the request asked for */
  commonName: string;
  ips: string[];
  dnsNames: string[];
  days: number;
}

const ipPattern = /^(\d{1,3}\.){3}\d{1,3}$|^[0-9a-f:]+$/i;
const dnsPattern = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i;

/** Signs a host's request: serverAuth + clientAuth, its addresses as subjectAltNames, a fresh serial. */
export function signCsr(ca: KeyPair, req: SignRequest): string {
  for (const ip of req.ips) if (!ipPattern.test(ip)) throw new CertificateError(`not an IP address: ${ip}`);
  for (const n of req.dnsNames) if (!dnsPattern.test(n)) throw new CertificateError(`not a DNS name: ${n}`);
  if (!/^[A-Za-z0-9._-]+$/.test(req.commonName)) throw new CertificateError(`not a host name: ${req.commonName}`);
  return scratch((d) => {
    writeFileSync(join(d, "ca.key"), ca.keyPem, { mode: 0o600 });
    writeFileSync(join(d, "ca.pem"), ca.certPem);
    writeFileSync(join(d, "csr"), req.csrPem);
    const san = [...req.ips.map((i) => `IP:${i}`), ...req.dnsNames.map((n) => `DNS:${n}`)].join(",");
    writeFileSync(join(d, "ext"), [
      `basicConstraints=critical,CA:FALSE`,
      `keyUsage=critical,digitalSignature,keyEncipherment`,
      `extendedKeyUsage=serverAuth,clientAuth`,
      ...(san ? [`subjectAltName=${san}`] : []),
      ``,
    ].join("\n"));
    const serial = "0x" + randomBytes(16).toString("hex");
    // -subj replaces whatever subject the request carried
    return openssl(["x509", "-req", "-in", join(d, "csr"), "-CA", join(d, "ca.pem"), "-CAkey", join(d, "ca.key"), "-set_serial", serial,
      "-days", String(req.days), "-extfile", join(d, "ext"), "-subj", `/O=skiff/CN=${req.commonName}`]).trim() + "\n";
  });
}

/** A key and certificate for a host, made in one place (the registrar's own, a database server's). */
export function issueCertificate(ca: KeyPair, commonName: string, ips: string[], dnsNames: string[] = [], days = 90): KeyPair {
  const { keyPem, csrPem } = createKeyAndCsr(commonName);
  return { keyPem, certPem: signCsr(ca, { csrPem, commonName, ips, dnsNames, days }) };
}

/** sha256 of the certificate's DER, hex: what a join token pins. */
export function fingerprint(certPem: string): string {
  return createHash("sha256").update(new X509Certificate(certPem).raw).digest("hex");
}

export interface CertInfo {
  subject: string;
  serial: string;
  validTo: Date;
  issuer: string;
  altNames: string;
}

export function certInfo(certPem: string): CertInfo {
  const c = new X509Certificate(certPem);
  return { subject: c.subject, serial: c.serialNumber, validTo: new Date(c.validTo), issuer: c.issuer, altNames: c.subjectAltName ?? "" };
}

/** Does `certPem` chain to one of the CAs in `caBundlePem`? */
export function signedBy(certPem: string, caBundlePem: string): boolean {
  const cert = new X509Certificate(certPem);
  return splitPem(caBundlePem).some((ca) => cert.verify(new X509Certificate(ca).publicKey));
}

export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((s) => s + "\n") ?? [];
}
