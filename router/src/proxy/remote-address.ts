// The client's address, once per request: its bytes decide whether the peer is a trusted front end
// (SKIFF_ROUTER_TRUSTED_PROXIES), its text goes into X-Forwarded-For. uWS's getRemoteAddressAsText
// formats with printf and hands back a fresh ArrayBuffer each time, which measured at about a quarter
// of the router's CPU per request; the binary form plus a cache of formatted IPv4 addresses is far cheaper.

import type { HttpResponse } from "uWebSockets.js";
import { isIpv4Mapped } from "../config/cidr-list.ts";

const MAX_CACHED = 65_536;
const ipv4Text = new Map<number, string>();

/** The peer's address as uWS gives it: 4 bytes, or 16 (IPv6, IPv4-mapped included). One getpeername(2) per call. */
export function peerBytes(res: HttpResponse): Uint8Array {
  return new Uint8Array(res.getRemoteAddress());
}

/** The address as text for X-Forwarded-For and the access log. */
export function peerText(bytes: Uint8Array, res: HttpResponse): string {
  let at = -1;
  if (bytes.length === 4) at = 0;
  else if (bytes.length === 16 && isIpv4Mapped(bytes)) at = 12;
  if (at < 0) return Buffer.from(res.getRemoteAddressAsText()).toString();
  const key = ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
  let text = ipv4Text.get(key);
  if (text === undefined) {
    text = `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
    if (ipv4Text.size >= MAX_CACHED) ipv4Text.clear();
    ipv4Text.set(key, text);
  }
  return text;
}
