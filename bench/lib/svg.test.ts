import { expect, test } from "bun:test";
import { formatValue, groupedBarChart, niceStep } from "./svg.ts";

test("niceStep cuts an axis into round steps", () => {
  expect(niceStep(83_256)).toBe(20_000);
  expect(niceStep(13.1)).toBe(5);
  expect(niceStep(0.9)).toBe(0.2);
  expect(niceStep(0)).toBe(1);
});

test("formatValue: grouped thousands, 3 significant digits below 100", () => {
  expect(formatValue(72_685)).toBe("72,685");
  expect(formatValue(0.5471)).toBe("0.547");
  expect(formatValue(18.44)).toBe("18.4");
  expect(formatValue(0)).toBe("0");
});

test("a grouped chart has a legend, a labelled bar per measured value, both axis titles, and escapes text (issue 9)", () => {
  const svg = groupedBarChart({
    title: "POST <64 KiB> & more",
    axis: "requests per second (higher is better)",
    groupAxis: "conns",
    series: ["skiff", "nginx"],
    colors: [1, 2],
    groups: [
      { label: "64 conns", values: [50_000, 60_000] },
      { label: "256 conns", values: [48_000, null] },
    ],
  });
  expect(svg.startsWith("<svg ")).toBe(true);
  expect(svg).toContain("POST &lt;64 KiB&gt; &amp; more");
  for (const text of [">skiff<", ">nginx<", ">64 conns<", ">256 conns<", ">conns<", ">requests per second (higher is better)<", ">50,000<", ">60,000<", ">48,000<", "nginx: not measured"])
    expect(svg).toContain(text);
  // 3 bars + 2 legend swatches + background + 1 alternate-row band
  expect(svg.match(/<rect /g)).toHaveLength(7);
  // the legend and the bars use the series' own palette slots (skiff: slot 1, nginx: slot 2)
  expect(svg).toContain('fill="#f28e2b"');
  expect(svg).toContain('fill="#e15759"');
  expect(svg).not.toContain('fill="#4e79a7"');
  // ticks of a round step, up to the first one past the largest value
  for (const tick of [">0<", ">20k<", ">40k<", ">60k<"]) expect(svg).toContain(tick);
});
