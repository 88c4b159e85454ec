import { expect, test } from "bun:test";
import { CidrList, CidrListError } from "./cidr-list.ts";

const v4 = (...b: number[]) => new Uint8Array(b);
const mapped = (a: number, b: number, c: number, d: number) => new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]);

test("IPv4 networks and single addresses, as text and as uWS's address bytes (issue 24)", () => {
  const list = CidrList.parse("10.0.0.0/8, 192.168.1.7 172.16.0.0/12", "X");
  expect(list.size).toBe(3);
  expect(list.entries).toEqual(["10.0.0.0/8", "192.168.1.7/32", "172.16.0.0/12"]);
  for (const inside of ["10.0.0.1", "10.255.255.255", "192.168.1.7", "172.31.255.1"]) expect(list.contains(inside)).toBe(true);
  for (const outside of ["11.0.0.1", "9.255.255.255", "192.168.1.8", "172.32.0.1", "127.0.0.1", "::1"]) expect(list.contains(outside)).toBe(false);
  expect(list.containsAddress(v4(10, 1, 2, 3))).toBe(true);
  expect(list.containsAddress(v4(127, 0, 0, 1))).toBe(false);
  // an IPv4 client on a dual-stack socket arrives IPv4-mapped
  expect(list.containsAddress(mapped(192, 168, 1, 7))).toBe(true);
  expect(list.containsAddress(mapped(192, 168, 1, 6))).toBe(false);
  // addresses with the top bit set (int32 sign) and /0, /32
  expect(CidrList.parse("200.0.0.0/8", "X").contains("200.1.2.3")).toBe(true);
  expect(CidrList.parse("0.0.0.0/0", "X").contains("255.255.255.255")).toBe(true);
  expect(CidrList.parse("255.255.255.255/32", "X").contains("255.255.255.254")).toBe(false);
});

test("IPv6 networks, and IPv4-mapped networks as the IPv4 network they map", () => {
  const list = CidrList.parse("fd00::/8,2001:db8:1::/48,::1", "X");
  expect(list.contains("fd12:3456::1")).toBe(true);
  expect(list.contains("fe00::1")).toBe(false);
  expect(list.contains("2001:db8:1:ffff::9")).toBe(true);
  expect(list.contains("2001:db8:2::9")).toBe(false);
  expect(list.contains("::1")).toBe(true);
  expect(list.contains("::2")).toBe(false);
  expect(list.contains("10.0.0.1")).toBe(false);
  const m = CidrList.parse("::ffff:10.0.0.0/104", "X");
  expect(m.contains("10.9.9.9")).toBe(true);
  expect(m.containsAddress(v4(10, 1, 1, 1))).toBe(true);
  expect(m.contains("11.0.0.0")).toBe(false);
  expect(CidrList.parse("2001:db8::/32", "X").contains("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")).toBe(true);
  expect(CidrList.parse("2001:db8::1:0:0:1/127", "X").contains("2001:db8::1:0:0:0")).toBe(true);
  expect(CidrList.parse("2001:db8::1:0:0:1/127", "X").contains("2001:db8::1:0:0:2")).toBe(false);
});

test("empty lists contain nothing; bad entries are refused with the setting's name", () => {
  for (const empty of [undefined, "", " , "]) {
    const l = CidrList.parse(empty, "X");
    expect(l.size).toBe(0);
    expect(l.contains("127.0.0.1")).toBe(false);
  }
  for (const bad of ["10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "example.com", "fd00::/129", "10.0.0.0/8x", "1.2.3.4/-1"])
    expect(() => CidrList.parse(bad, "SKIFF_ROUTER_TRUSTED_PROXIES")).toThrow(CidrListError);
  expect(() => CidrList.parse("nope", "SKIFF_ROUTER_TRUSTED_PROXIES")).toThrow(/SKIFF_ROUTER_TRUSTED_PROXIES: "nope"/);
});
