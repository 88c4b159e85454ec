// The console's one script: htmx for the buttons, forms and refreshing panels; the login form; the
// charts (uPlot) and the live log tail where a page has them.

import htmx from "htmx.org";
import { startCharts } from "./charts.ts";
import { startLogTail } from "./log-tail.ts";
import { startLogin } from "./login.ts";

// A refusal (403, 404, 422…) is shown in the flash area like a success, not dropped.
htmx.config.responseHandling = [
  { code: "204", swap: false },
  { code: "[23]..", swap: true },
  { code: "[45]..", swap: true, error: false },
];

const flash = document.getElementById("flash");
document.body.addEventListener("htmx:sendError", () => {
  if (flash) flash.innerHTML = `<div class="flash error">The controller did not answer. Is it running?</div>`;
});

startLogin();
startCharts();
startLogTail();
