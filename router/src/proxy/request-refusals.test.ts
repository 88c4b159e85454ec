import { describe, expect, test } from "bun:test";
import type { HttpRequest } from "uWebSockets.js";
import { RouterMetrics } from "../status/router-metrics.ts";
import { BodyMode, type Exchange } from "./exchange.ts";
import { EngineCloses, RequestRefusals, engineClosesOnContentLength, refuseRequest, transferEncodingRefusal } from "./request-refusals.ts";
import { RouterErrors } from "./router-errors.ts";

describe("transferEncodingRefusal (RFC 9112 §6; issue 16 item 4)", () => {
  test("exactly chunked passes, in any case and with empty list elements around it", () => {
    for (const v of [["chunked"], ["CHUNKED"], ["Chunked"], [" chunked "], [", chunked"], ["chunked,"], ["", "chunked"]]) expect(transferEncodingRefusal(v)).toBeUndefined();
  });

  test("a coding the router does not implement is 501, as nginx answers", () => {
    for (const v of [["xchunked"], ["gzip"], ["identity"], ["gzip, chunked"], ["chunked, gzip"], ["gzip", "chunked"], ["chunked;ext=1"], ["deflate"]])
      expect(transferEncodingRefusal(v)).toBe(RequestRefusals.unknownTransferCoding);
  });

  test("chunked twice, an empty list or a malformed coding is 400", () => {
    for (const v of [["chunked, chunked"], ["chunked", "chunked"], [""], [" , "], ["chun ked"], ["chunked\u0001"], ["ch(u)nked"]])
      expect(transferEncodingRefusal(v)).toBe(RequestRefusals.invalidTransferEncoding);
  });

  test("every refusal has a status, a code and a body that says what to do", () => {
    for (const r of Object.values(RequestRefusals)) {
      expect(r.status).toMatch(/^[45]\d\d /);
      expect(r.code).toMatch(/^[a-z_]+$/);
      expect(r.body()).toEndWith("\n");
    }
  });
});

test("engineClosesOnContentLength: uWS 20.30 closes on anything but 1-9 digits (spaces trimmed)", () => {
  for (const v of ["0", "5", " 5 ", "999999999", "000000005"]) expect(engineClosesOnContentLength(v)).toBeUndefined();
  for (const v of ["abc", "+5", "-1", "5, 5", "0x10", ""]) expect(engineClosesOnContentLength(v)).toBe(EngineCloses.contentLengthNotDigits);
  for (const v of ["1000000000", "0000000005", "99999999999999999999"]) expect(engineClosesOnContentLength(v)).toBe(EngineCloses.contentLengthOver9Digits);
});

describe("refuseRequest: the stage as the handler calls it", () => {
  /** a stand-in for uWS's HttpRequest: header lines in order, getHeader gives the first */
  const request = (lines: [string, string][]): HttpRequest =>
    ({
      getHeader: (k: string) => lines.find(([n]) => n === k)?.[1] ?? "",
      forEach: (cb: (k: string, v: string) => void) => lines.forEach(([k, v]) => cb(k, v)),
    }) as unknown as HttpRequest;
  const exchange = (over: Partial<Exchange>): Exchange => ({ host: "a.example.com", bodyMode: BodyMode.None, contentLength: 0, ...over }) as Exchange;
  const MAX_BODY = 1024 ** 3;

  test("a plain request passes and counts nothing", () => {
    const m = new RouterMetrics();
    expect(refuseRequest(exchange({}), request([["host", "a.example.com"]]), undefined, MAX_BODY, m)).toBeUndefined();
    expect(render(m)).not.toContain("cause=");
  });

  test("xchunked is refused 501 and counted by its code", () => {
    const m = new RouterMetrics();
    const req = request([["host", "a.example.com"], ["transfer-encoding", "xchunked"]]);
    expect(refuseRequest(exchange({ bodyMode: BodyMode.Chunked }), req, undefined, MAX_BODY, m)).toBe(RequestRefusals.unknownTransferCoding);
    expect(render(m)).toContain('skiff_router_refused_requests_total{cause="unknown_transfer_coding"} 1');
  });

  test("a second Transfer-Encoding line is read too", () => {
    const req = request([["host", "a.example.com"], ["transfer-encoding", "chunked"], ["transfer-encoding", "gzip"]]);
    expect(refuseRequest(exchange({ bodyMode: BodyMode.Chunked }), req, undefined, MAX_BODY, new RouterMetrics())).toBe(RequestRefusals.unknownTransferCoding);
  });

  test("two different Host lines are 400 duplicate_host (stage 1 kept the last, uWS gives the first)", () => {
    const req = request([["host", "a.example.com"], ["host", "b.example.com"]]);
    expect(refuseRequest(exchange({ host: "b.example.com" }), req, undefined, MAX_BODY, new RouterMetrics())).toBe(RequestRefusals.duplicateHost);
  });

  test("stage 1's problem and a body over the limit are refused and counted as before", () => {
    const m = new RouterMetrics();
    const req = request([["host", "a.example.com"], ["content-length", "5"], ["content-length", "6"]]);
    expect(refuseRequest(exchange({}), req, RouterErrors.badRequest, MAX_BODY, m)).toBe(RouterErrors.badRequest);
    const big = request([["host", "a.example.com"], ["content-length", "2048"]]);
    expect(refuseRequest(exchange({ bodyMode: BodyMode.Length, contentLength: 2048 }), big, undefined, 1024, m)).toBe(RouterErrors.payloadTooLarge);
    const text = render(m);
    expect(text).toContain('skiff_router_refused_requests_total{cause="invalid_request"} 1');
    expect(text).toContain('skiff_router_refused_requests_total{cause="request_too_large"} 1');
  });

  test("a Content-Length uWS will close on is never forwarded, and counted as an engine close, not a refusal", () => {
    const m = new RouterMetrics();
    const bad = request([["host", "a.example.com"], ["content-length", "abc"]]);
    expect(refuseRequest(exchange({}), bad, RouterErrors.badRequest, MAX_BODY, m)).toBe(RouterErrors.badRequest);
    // 10 digits: under the router's 1 GiB limit, over what uWS counts
    const long = request([["host", "a.example.com"], ["content-length", "1000000000"]]);
    expect(refuseRequest(exchange({ bodyMode: BodyMode.Length, contentLength: 1e9 }), long, undefined, MAX_BODY, m)).toBe(RouterErrors.payloadTooLarge);
    const text = render(m);
    expect(text).toContain('skiff_router_engine_closed_total{cause="content_length_not_digits"} 1');
    expect(text).toContain('skiff_router_engine_closed_total{cause="content_length_over_9_digits"} 1');
    expect(text).not.toContain("skiff_router_refused_requests_total{");
  });

  test("requests closed before an answer (status 499) are counted", () => {
    const m = new RouterMetrics();
    m.recordRequest(499, undefined, 1);
    m.recordRequest(200, undefined, 1);
    expect(render(m)).toContain("skiff_router_closed_before_answer_total 1");
  });
});

function render(m: RouterMetrics): string {
  return m.render({ routes: () => 0, endpoints: () => 0, bus: () => ({ accepted: {}, rejected: {}, handlerErrors: {} }), activeRequests: () => 0 });
}
