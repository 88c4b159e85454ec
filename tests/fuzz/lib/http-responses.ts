// Splits the bytes a server sent on one connection into HTTP/1.1 responses, strictly: a status line,
// header lines, then a body framed by Content-Length or chunked encoding (or, with neither, the rest
// of the connection). Anything else is garbage and reported as such. Interim responses (1xx but 101) are
// counted apart, not taken for answers: RFC 9110 §15.2 has a client read any number of them before the
// final one.

export interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export function parseResponses(text: string, closed: boolean): { responses: ParsedResponse[]; interim: number[]; garbage?: string; partial: boolean } {
  const responses: ParsedResponse[] = [];
  const interim: number[] = [];
  let i = 0;
  while (i < text.length) {
    const headEnd = text.indexOf("\r\n\r\n", i);
    if (headEnd < 0) return { responses, interim, partial: true, ...(/^HTTP\/1\.1 \d{0,3}/.test(text.slice(i, i + 12)) || "HTTP/1.1 ".startsWith(text.slice(i, i + 9)) ? {} : { garbage: text.slice(i, i + 80) }) };
    const lines = text.slice(i, headEnd).split("\r\n");
    const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]*$/.exec(lines[0]!) ?? /^HTTP\/1\.1 (\d{3})$/.exec(lines[0]!);
    if (!m) return { responses, interim, partial: false, garbage: lines[0]!.slice(0, 80) };
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(":");
      if (c <= 0 || /[\s]/.test(l.slice(0, c))) return { responses, interim, partial: false, garbage: `header line ${JSON.stringify(l.slice(0, 80))}` };
      const k = l.slice(0, c).toLowerCase();
      headers[k] = headers[k] === undefined ? l.slice(c + 1).trim() : `${headers[k]}, ${l.slice(c + 1).trim()}`;
    }
    i = headEnd + 4;
    const status = Number(m[1]);
    let body = "";
    if (status >= 100 && status < 200 && status !== 101) {
      interim.push(status);
      continue;
    }
    if (status === 204 || status === 304 || status === 101) {
      // no body
    } else if (headers["transfer-encoding"]?.toLowerCase() === "chunked") {
      for (;;) {
        const e = text.indexOf("\r\n", i);
        if (e < 0) return { responses, interim, partial: true };
        const size = parseInt(text.slice(i, e).split(";")[0]!, 16);
        if (!Number.isFinite(size)) return { responses, interim, partial: false, garbage: `chunk size ${JSON.stringify(text.slice(i, e).slice(0, 40))}` };
        i = e + 2;
        if (size === 0) {
          const t = text.indexOf("\r\n\r\n", i - 2);
          if (t < 0) return { responses, interim, partial: true };
          i = t + 4;
          break;
        }
        if (i + size + 2 > text.length) return { responses, interim, partial: true };
        body += text.slice(i, i + size);
        i += size + 2;
      }
    } else if (headers["content-length"] !== undefined) {
      const n = Number(headers["content-length"]);
      if (!Number.isSafeInteger(n) || n < 0) return { responses, interim, partial: false, garbage: `content-length ${headers["content-length"]}` };
      if (i + n > text.length) return { responses, interim, partial: true };
      body = text.slice(i, i + n);
      i += n;
    } else {
      body = text.slice(i);
      i = text.length;
      if (!closed) return { responses: [...responses, { status, headers, body }], interim, partial: true };
    }
    responses.push({ status, headers, body });
  }
  return { responses, interim, partial: false };
}
