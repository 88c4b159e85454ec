import { expect, test } from "bun:test";
import { html } from "./html.ts";

test("every value is escaped; nested html, arrays and empty values compose", () => {
  const name = `<script>alert("x")</script>&'`;
  const row = (s: string) => html`<td>${s}</td>`;
  expect(html`<p title="${name}">${name}</p>`.text).toBe(`<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</p>`);
  expect(html`<tr>${["a", "<b>"].map(row)}</tr>${null}${undefined}${false}${0}`.text).toBe("<tr><td>a</td><td>&lt;b&gt;</td></tr>0");
});
