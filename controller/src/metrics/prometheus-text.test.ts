import { describe, expect, test } from "bun:test";
import { addBuckets, bucketIncrease, bucketsOf, counterIncrease, parsePrometheusText, quantileOf } from "./prometheus-text.ts";

const TEXT = `# HELP skiff_router_requests_total Requests served, by status class.
# TYPE skiff_router_requests_total counter
skiff_router_requests_total{class="2xx"} 10
skiff_router_route_requests_total{route="hello.skiff.localhost",class="2xx"} 7
skiff_router_route_requests_total{route="we\\"ird\\\\.x/p",class="5xx"} 2
skiff_router_request_duration_seconds_bucket{le="0.001"} 4
skiff_router_request_duration_seconds_bucket{le="0.01"} 8
skiff_router_request_duration_seconds_bucket{le="+Inf"} 10
skiff_router_routes 3
garbage line without value
`;

describe("the routers' metrics text", () => {
  test("samples with labels, escapes and gauges; junk skipped", () => {
    const s = parsePrometheusText(TEXT);
    expect(s.find((x) => x.name === "skiff_router_routes")?.value).toBe(3);
    expect(s.filter((x) => x.name === "skiff_router_route_requests_total").map((x) => x.labels)).toEqual([
      { route: "hello.skiff.localhost", class: "2xx" },
      { route: 'we"ird\\.x/p', class: "5xx" },
    ]);
    expect(s.some((x) => x.name === "garbage")).toBe(false);
  });

  test("counter increases survive a router restart", () => {
    expect(counterIncrease(undefined, 5)).toBe(0);
    expect(counterIncrease(5, 9)).toBe(4);
    expect(counterIncrease(9, 2)).toBe(2);
  });

  test("quantiles from bucket increases, as histogram_quantile", () => {
    const b = bucketsOf(parsePrometheusText(TEXT), "skiff_router_request_duration_seconds_bucket");
    expect(b).toEqual([[0.001, 4], [0.01, 8], [Infinity, 10]]);
    // p50: rank 5 of 10 falls in (0.001, 0.01], 1 of its 4 observations in
    expect(quantileOf(b, 0.5)).toBeCloseTo(0.001 + 0.009 * 0.25);
    expect(quantileOf(b, 0.99)).toBe(0.01); // in +Inf: the last finite bound
    expect(quantileOf([[0.001, 0], [Infinity, 0]], 0.5)).toBeUndefined();
    const later: [number, number][] = [[0.001, 4], [0.01, 18], [Infinity, 20]];
    expect(bucketIncrease(b, later)).toEqual([[0.001, 0], [0.01, 10], [Infinity, 10]]);
    expect(bucketIncrease(later, b)).toEqual(b); // reset
    expect(addBuckets(b, b)).toEqual([[0.001, 8], [0.01, 16], [Infinity, 20]]);
  });
});
