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

// Hop-by-hop headers, Date (uWS writes its own) and uWS's own marker are never passed through: see hopByHop.

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
    const head = this.parseHeadBytes(data, start, end);
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
  /** one head object per parser, reused: the sink reads it during onHead only */
  private readonly head: ResponseHead = { status: 0, statusText: "", headers: [], contentLength: -1, keepAlive: true, sessionCookie: undefined };

  /**
   * Parses the head in place on the bytes `b[start..end)` (end = the blank line's CRLF): header names
   * are classified by length and bytes, and strings are made only for the headers passed through (one
   * latin1 string of the head, sliced), so a response whose headers are all hop-by-hop makes none.
   */
  private parseHeadBytes(b: Buffer, start: number, end: number): ResponseHead {
    let eol = start;
    while (eol < end && b[eol] !== 13) eol++;
    // HTTP/1.x SP 3DIGIT [SP reason]
    if (
      eol - start < 12 ||
      b[start] !== 72 || b[start + 1] !== 84 || b[start + 2] !== 84 || b[start + 3] !== 80 || b[start + 4] !== 47 || b[start + 5] !== 49 || b[start + 6] !== 46 ||
      b[start + 8] !== 32 ||
      (eol - start !== 12 && b[start + 12] !== 32)
    )
      throw new ResponseParseError("bad status line");
    const http10 = b[start + 7] === 48; /* '0' */
    const status = (b[start + 9]! - 48) * 100 + (b[start + 10]! - 48) * 10 + (b[start + 11]! - 48);
    if (!(status >= 100 && status <= 999)) throw new ResponseParseError("bad status code");
    let text: string | undefined; // the head as a latin1 string, made on first need
    const head = this.head;
    head.status = status;
    if (status === 200 && eol - start === 15 && b[start + 13] === 79 && b[start + 14] === 75) head.statusText = "200 OK";
    else if (eol - start > 13) head.statusText = (text = latin1(b, start, end)).slice(9, eol - start);
    else head.statusText = `${status} ${status === 200 ? "OK" : ""}`.trim();
    const headers = head.headers;
    headers.length = 0;
    let contentLength = -1;
    let keepAlive = !http10;
    let sessionCookie: string | undefined;
    this.chunked = false;
    let pos = eol + 2;
    while (pos < end) {
      let next = pos;
      let colon = -1;
      while (next < end) {
        const c = b[next];
        if (c === 13) break;
        if (c === 58 && colon < 0) colon = next;
        next++;
      }
      if (colon < 0) throw new ResponseParseError("bad header line");
      const nameLen = colon - pos;
      if (nameLen === 0 || b[pos] === 32 || b[pos] === 9) throw new ResponseParseError("bad header name");
      let vs = colon + 1;
      while (vs < next && (b[vs] === 32 || b[vs] === 9)) vs++;
      let ve = next;
      while (ve > vs && (b[ve - 1] === 32 || b[ve - 1] === 9)) ve--;
      const linePos = pos;
      pos = next + 2;
      switch (hopByHop(b, linePos, nameLen)) {
        case Hop.ContentLength: {
          if (ve - vs < 1 || ve - vs > 15) throw new ResponseParseError("bad content-length");
          let n = 0;
          for (let i = vs; i < ve; i++) {
            const d = b[i]! - 48;
            if (d < 0 || d > 9) throw new ResponseParseError("bad content-length");
            n = n * 10 + d;
          }
          if (contentLength >= 0 && contentLength !== n) throw new ResponseParseError("conflicting content-length");
          contentLength = n;
          continue;
        }
        case Hop.TransferEncoding:
          if (latin1(b, vs, ve).toLowerCase().includes("chunked")) this.chunked = true;
          continue;
        case Hop.Connection: {
          const v = latin1(b, vs, ve).toLowerCase();
          if (v.includes("close")) keepAlive = false;
          else if (v.includes("keep-alive")) keepAlive = true;
          continue;
        }
        case Hop.Other:
          continue;
        case Hop.SetCookie:
        case Hop.No:
          break;
      }
      text ??= latin1(b, start, end);
      const value = text.slice(vs - start, ve - start);
      if (nameLen === 10 && value.startsWith("JSESSIONID=") && hopByHop(b, linePos, nameLen) === Hop.SetCookie) sessionCookie = value;
      headers.push(text.slice(linePos - start, colon - start), value);
    }
    if (this.chunked) contentLength = -1; // Transfer-Encoding wins over Content-Length (RFC 9112 6.3)
    head.contentLength = contentLength;
    head.keepAlive = keepAlive;
    head.sessionCookie = sessionCookie;
    return head;
  }
}

/** Buffer's own latin1Slice (Node and Bun): a string of bytes without toString's argument handling. */
function latin1(b: Buffer, start: number, end: number): string {
  return (b as Buffer & { latin1Slice(start: number, end: number): string }).latin1Slice(start, end);
}

const Hop = { No: 0, ContentLength: 1, TransferEncoding: 2, Connection: 3, Other: 4, SetCookie: 5 } as const;
type Hop = (typeof Hop)[keyof typeof Hop];

/** Header names the router handles itself or never forwards, matched by length first, then bytes
 * compared case-insensitively (no lower-cased string per header). */
function hopByHop(b: Buffer, at: number, len: number): Hop {
  switch (len) {
    case 2:
      return lowerIs(b, at, "te") ? Hop.Other : Hop.No;
    case 4:
      return lowerIs(b, at, "date") ? Hop.Other : Hop.No;
    case 7:
      return lowerIs(b, at, "upgrade") || lowerIs(b, at, "trailer") ? Hop.Other : Hop.No;
    case 10:
      if (lowerIs(b, at, "connection")) return Hop.Connection;
      if (lowerIs(b, at, "keep-alive")) return Hop.Other;
      return lowerIs(b, at, "set-cookie") ? Hop.SetCookie : Hop.No;
    case 11:
      return lowerIs(b, at, "uwebsockets") ? Hop.Other : Hop.No;
    case 14:
      return lowerIs(b, at, "content-length") ? Hop.ContentLength : Hop.No;
    case 16:
      return lowerIs(b, at, "proxy-connection") ? Hop.Other : Hop.No;
    case 17:
      return lowerIs(b, at, "transfer-encoding") ? Hop.TransferEncoding : Hop.No;
    default:
      return Hop.No;
  }
}

/** `lower` is lower-case letters and '-': OR-ing 0x20 folds ASCII upper case and leaves '-' alone. */
function lowerIs(b: Buffer, at: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((b[at + i]! | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}
