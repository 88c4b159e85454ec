// The live log tail: Server-Sent Events from /v3/apps/:guid/logs/stream (through the console), recent
// lines first, then live batches. The page shows at most SHOW_PER_SECOND lines a second and keeps the
// newest KEEP_LINES; beyond that rate it skips lines on screen and says how many (the agents keep
// every line: `skiff logs APP --recent`), so a flood never freezes the page.

import { logTag } from "../../../bus/log-tag.ts";

export const SHOW_PER_SECOND = 200;
const TICK_MS = 100;
const KEEP_LINES = 1000;

interface LogLine {
  ts: number;
  source: string;
  index: number;
  stream: "out" | "err";
  line: string;
  process_type?: string;
  task?: string;
}

export function startLogTail(): void {
  const box = document.getElementById("logs");
  const out = document.getElementById("log-lines");
  const status = document.getElementById("log-status");
  if (!box || !out || !status) return;
  let source: EventSource | undefined;
  let queue: LogLine[] = [];
  let paused = false;
  let skipped = 0;
  let arrived = 0;
  let arrivedRate = 0;
  let shown = 0;

  const render = (lines: LogLine[]) => {
    if (lines.length === 0) return;
    const atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 8;
    const frag = document.createDocumentFragment();
    for (const l of lines) {
      const div = document.createElement("div");
      div.className = `l src-${l.source}${l.stream === "err" ? " err" : ""}`;
      const tag = logTag(l);
      div.textContent = `${new Date(l.ts).toISOString().slice(11, 23)} [${tag}] ${l.stream === "err" ? "ERR" : "OUT"} ${l.line}`;
      frag.appendChild(div);
    }
    out.appendChild(frag);
    while (out.childElementCount > KEEP_LINES) out.firstElementChild!.remove();
    shown += lines.length;
    out.dataset.shown = String(shown);
    if (atBottom) out.scrollTop = out.scrollHeight;
  };

  const connect = () => {
    source?.close();
    const checked = Array.from(box.querySelectorAll<HTMLInputElement>("input[name=source]"));
    const on = checked.filter((c) => c.checked).map((c) => c.value);
    const url = box.dataset.stream! + (on.length === checked.length ? "" : `?sources=${encodeURIComponent(on.join(",") || "NONE")}`);
    if (on.length === 0) return void (status.textContent = "no source selected");
    source = new EventSource(url);
    source.addEventListener("recent", (e) => {
      out.replaceChildren();
      queue = [];
      const { lines } = JSON.parse((e as MessageEvent).data) as { lines: LogLine[] };
      render(lines); // recent lines at once, whatever the rate
      status.textContent = `${lines.length} recent lines, then live`;
    });
    source.addEventListener("lines", (e) => {
      const { lines, skipped: relaySkipped } = JSON.parse((e as MessageEvent).data) as { lines: LogLine[]; skipped: number };
      arrived += lines.length + relaySkipped;
      skipped += relaySkipped;
      queue.push(...lines);
    });
    source.addEventListener("error", () => {
      status.textContent = source?.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…";
    });
  };

  // at most SHOW_PER_SECOND lines a second on screen; a backlog beyond one second is skipped, oldest first
  const perTick = Math.max(1, Math.round((SHOW_PER_SECOND * TICK_MS) / 1000));
  setInterval(() => {
    if (queue.length > SHOW_PER_SECOND) {
      skipped += queue.length - SHOW_PER_SECOND;
      queue = queue.slice(-SHOW_PER_SECOND);
    }
    if (!paused) render(queue.splice(0, perTick));
  }, TICK_MS);
  setInterval(() => {
    arrivedRate = arrived;
    arrived = 0;
    if (!source || source.readyState !== EventSource.OPEN) return;
    const name = box.dataset.app ?? "APP";
    status.textContent = `${arrivedRate} lines/s arriving; showing at most ${SHOW_PER_SECOND}/s${paused ? " (paused)" : ""}` +
      (skipped ? `; ${skipped} not shown on screen (the agents keep every line: skiff logs ${name} --recent)` : "");
    out.dataset.skipped = String(skipped);
  }, 1000);

  box.querySelectorAll("input[name=source]").forEach((c) => c.addEventListener("change", connect));
  const pause = document.getElementById("log-pause")!;
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
  });
  document.getElementById("log-clear")!.addEventListener("click", () => out.replaceChildren());
  connect();
}
