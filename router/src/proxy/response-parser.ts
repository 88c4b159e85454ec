// A minimal incremental HTTP/1.1 response parser for the upstream side: status line, headers,
// Content-Length, chunked and close-delimited bodies, 1xx interim responses skipped. It hands the
// head and body slices to a sink as they arrive; nothing is copied except a head split across reads.

export interface ResponseHead {
  status: number;
  /** e.g. `200 OK`, ready for uWS writeStatus */
  statusText: string;
  /** flat list: name, value, name, value… (names as the backend sent them); hop-by-hop ones removed */
  headers: string[];
  /** -1 when the length is not known in advance (chunked or close-delimited) */
  contentLength: number;
  /** false when the backend asked to close, or spoke HTTP/1.0 without keep-alive */
  keepAlive: boolean;
  /** a `Set-Cookie` naming JSESSIONID was seen (sticky sessions) */
  sessionCookie: string | undefined;
}

export interface ResponseSink {
  onHead(head: ResponseHead): void;
  /** a slice of body bytes (already de-chunked); valid only during the call unless copied */
  onBody(chunk: Buffer): void;
  onEnd(): void;
}

export class ResponseParseError extends Error {
  override name = "ResponseParseError";
}

const MAX_HEAD_BYTES = 64 * 1024;
const CRLFCRLF = Buffer.from("\r\n\r\n");
const MAX_CHUNK_LINE = 1024;

const State = {
  Head: 0,
  Length: 1,
  ChunkSize: 2,
  ChunkData: 3,
  ChunkDataEnd: 4,
  Trailers: 5,
  UntilClose: 6,
  Done: 7,
} as const;
type State = (typeof State)[keyof typeof State];

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length", "te", "trailer", "upgrade", "date", "uwebsockets"]);

export class ResponseParser {
  private state: State = State.Head;
  private pendingHead: Buffer | undefined = undefined;
  private remaining = 0;
  private line = "";
  /** the request was HEAD: the response has no body whatever its headers say */
  private noBody = false;
  sink: ResponseSink | undefined = undefined;
  /** bytes of the response seen so far (0: the backend has said nothing) */
  bytesSeen = 0;

  /** Prepares for the response to a new request. */
  reset(sink: ResponseSink, requestWasHead: boolean): void {
    this.state = State.Head;
    this.pendingHead = undefined;
    this.remaining = 0;
    this.line = "";
    this.noBody = requestWasHead;
    this.sink = sink;
    this.bytesSeen = 0;
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  /** The body runs until the backend closes: its close is the end, not an error. */
  get endsAtClose(): boolean {
    return this.state === State.UntilClose;
  }

  /**
   * Feeds bytes. Returns the number of bytes left over after the response ended (a backend that
   * sent more than one response is broken: the caller closes that connection). Throws ResponseParseError.
   */
  execute(buf: Buffer, len: number = buf.length): number {
    this.bytesSeen += len;
    let pos = 0;
    while (pos < len) {
      switch (this.state) {
        case State.Head: {
          pos = this.parseHead(buf, pos, len);
          if (pos < 0) return 0;
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          const chunk = pos === 0 && n === buf.length ? buf : buf.subarray(pos, pos + n);
          pos += n;
          this.sink!.onBody(chunk);
          if (this.remaining === 0) this.finish();
          break;
        }
        case State.UntilClose: {
          this.sink!.onBody(pos === 0 && len === buf.length ? buf : buf.subarray(pos, len));
          return 0;
        }
        case State.ChunkSize:
        case State.Trailers:
        case State.ChunkDataEnd: {
          let nl = buf.indexOf(10, pos);
          if (nl >= len) nl = -1;
          const end = nl < 0 ? len : nl;
          this.line += buf.toString("latin1", pos, end);
          if (this.line.length > MAX_CHUNK_LINE) throw new ResponseParseError("chunk line too long");
          if (nl < 0) return 0;
          pos = nl + 1;
          const line = this.line.endsWith("\r") ? this.line.slice(0, -1) : this.line;
          this.line = "";
          this.onChunkLine(line);
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          const chunk = buf.subarray(pos, pos + n);
          pos += n;
          this.sink!.onBody(chunk);
          if (this.remaining === 0) this.state = State.ChunkDataEnd;
          break;
        }
        case State.Done:
          return len - pos;
      }
    }
    if (this.state === State.Length && this.remaining === 0) this.finish();
    return 0;
  }

  /** The backend closed the connection: the end of a close-delimited body, else an error. */
  endOfInput(): boolean {
    if (this.state === State.UntilClose) {
      this.finish();
      return true;
    }
    return this.state === State.Done;
  }

  private onChunkLine(line: string): void {
    if (this.state === State.ChunkDataEnd) {
      if (line !== "") throw new ResponseParseError("missing CRLF after chunk data");
      this.state = State.ChunkSize;
      return;
    }
    if (this.state === State.Trailers) {
      if (line === "") this.finish();
      return; // trailers are dropped (uWS cannot send them)
    }
    const semi = line.indexOf(";");
    const hex = (semi >= 0 ? line.slice(0, semi) : line).trim();
    if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw new ResponseParseError(`bad chunk size ${JSON.stringify(hex.slice(0, 20))}`);
    const size = parseInt(hex, 16);
    if (size === 0) this.state = State.Trailers;
    else {
      this.remaining = size;
      this.state = State.ChunkData;
    }
  }

  private finish(): void {
    this.state = State.Done;
    this.sink!.onEnd();
  }

  /** Returns the position after the head, or -1 if more bytes are needed. */
  private parseHead(buf: Buffer, pos: number, len: number): number {
    let data = buf;
    let start = pos;
    let dataEnd = len;
    if (this.pendingHead) {
      data = Buffer.concat([this.pendingHead, buf.subarray(pos, len)]);
      start = 0;
      dataEnd = data.length;
    }
    let end = data.indexOf(CRLFCRLF, start);
    if (end + 4 > dataEnd) end = -1; // bytes past dataEnd are stale (shared read buffer)
    if (end < 0) {
      if (dataEnd - start > MAX_HEAD_BYTES) throw new ResponseParseError("response head too large");
      this.pendingHead = Buffer.from(data.subarray(start, dataEnd)); // a copy: buf may be a shared read buffer
      return -1;
    }
    const consumedFromBuf = this.pendingHead ? end + 4 - this.pendingHead.length + pos : end + 4;
    this.pendingHead = undefined;
    const head = this.parseHeadText(data.toString("latin1", start, end));
    if (head.status >= 100 && head.status < 200) {
      if (head.status === 101) throw new ResponseParseError("unexpected 101 Switching Protocols");
      return consumedFromBuf; // interim response: the real one follows
    }
    const bodyless = this.noBody || head.status === 204 || head.status === 304;
    this.sink!.onHead(head);
    if (bodyless) {
      this.finish();
    } else if (head.contentLength >= 0) {
      this.remaining = head.contentLength;
      this.state = State.Length;
      if (head.contentLength === 0) this.finish();
    } else if (this.chunked) {
      this.state = State.ChunkSize;
    } else {
      head.keepAlive = false;
      this.state = State.UntilClose;
    }
    return consumedFromBuf;
  }

  private chunked = false;

  private parseHeadText(text: string): ResponseHead {
    let eol = text.indexOf("\r\n");
    if (eol < 0) eol = text.length;
    // HTTP/1.x SP 3DIGIT SP reason
    if (!text.startsWith("HTTP/1.") || text.charCodeAt(8) !== 32 || (eol !== 12 && text.charCodeAt(12) !== 32))
      throw new ResponseParseError("bad status line");
    const http10 = text.charCodeAt(7) === 48; /* '0' */
    const status = (text.charCodeAt(9) - 48) * 100 + (text.charCodeAt(10) - 48) * 10 + (text.charCodeAt(11) - 48);
    if (!(status >= 100 && status <= 999)) throw new ResponseParseError("bad status code");
    const statusText = eol > 13 ? text.slice(9, eol) : `${status} ${status === 200 ? "OK" : ""}`.trim();
    const headers: string[] = [];
    let contentLength = -1;
    let keepAlive = !http10;
    let sessionCookie: string | undefined;
    this.chunked = false;
    let pos = eol + 2;
    while (pos < text.length) {
      let next = text.indexOf("\r\n", pos);
      if (next < 0) next = text.length;
      const colon = text.indexOf(":", pos);
      if (colon < 0 || colon > next) throw new ResponseParseError("bad header line");
      const name = text.slice(pos, colon);
      let vs = colon + 1;
      while (text.charCodeAt(vs) === 32 || text.charCodeAt(vs) === 9) vs++;
      let ve = next;
      while (ve > vs && (text.charCodeAt(ve - 1) === 32 || text.charCodeAt(ve - 1) === 9)) ve--;
      const value = text.slice(vs, ve);
      pos = next + 2;
      const c0 = name.charCodeAt(0) | 0x20;
      // Only names starting with c, d, k, p, t, u or s can need a look: skip the lower-casing otherwise.
      if (c0 === 99 || c0 === 100 || c0 === 107 || c0 === 112 || c0 === 116 || c0 === 117 || c0 === 115) {
        const lower = name.toLowerCase();
        if (HOP_BY_HOP.has(lower)) {
          if (lower === "content-length") {
            if (!/^\d{1,15}$/.test(value)) throw new ResponseParseError("bad content-length");
            const n = Number(value);
            if (contentLength >= 0 && contentLength !== n) throw new ResponseParseError("conflicting content-length");
            contentLength = n;
          } else if (lower === "transfer-encoding") {
            if (value.toLowerCase().includes("chunked")) this.chunked = true;
          } else if (lower === "connection") {
            const v = value.toLowerCase();
            if (v.includes("close")) keepAlive = false;
            else if (v.includes("keep-alive")) keepAlive = true;
          }
          continue;
        }
        if (lower === "set-cookie" && value.startsWith("JSESSIONID=")) sessionCookie = value;
      }
      if (name.length === 0 || name.charCodeAt(0) === 32 || name.charCodeAt(0) === 9) throw new ResponseParseError("bad header name");
      headers.push(name, value);
    }
    if (this.chunked) contentLength = -1; // Transfer-Encoding wins over Content-Length (RFC 9112 6.3)
    return { status, statusText, headers, contentLength, keepAlive, sessionCookie };
  }
}
