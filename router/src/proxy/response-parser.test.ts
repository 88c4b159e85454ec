import { describe, expect, test } from "bun:test";
import { ResponseParser, type ResponseHead } from "./response-parser.ts";

function run(chunks: (string | Buffer)[], head = false) {
  const p = new ResponseParser();
  const out = { head: undefined as ResponseHead | undefined, body: "", ended: 0, left: 0 };
  p.reset({ onHead: (h) => (out.head = h), onBody: (b) => (out.body += b.toString("latin1")), onEnd: () => out.ended++ }, head);
  for (const c of chunks) out.left += p.execute(typeof c === "string" ? Buffer.from(c, "latin1") : c);
  return Object.assign(out, { p });
}

describe("ResponseParser", () => {
  test("content-length in one read", () => {
    const r = run(["HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\nDate: x\r\n\r\nhello"]);
    expect(r.head!.status).toBe(200);
    expect(r.head!.statusText).toBe("200 OK");
    expect(r.head!.headers).toEqual(["X-A", "b"]);
    expect(r.head!.contentLength).toBe(5);
    expect(r.head!.keepAlive).toBe(true);
    expect(r.body).toBe("hello");
    expect(r.ended).toBe(1);
  });

  test("head and body split byte by byte", () => {
    const text = "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc";
    const r = run([...text].map((c) => c));
    expect(r.head!.statusText).toBe("404 Not Found");
    expect(r.body).toBe("abc");
    expect(r.ended).toBe(1);
  });

  test("chunked, split anywhere, trailers dropped", () => {
    const text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
    for (let cut = 1; cut < text.length; cut += 7) {
      const r = run([text.slice(0, cut), text.slice(cut)]);
      expect(r.body).toBe("hello0123456789");
      expect(r.ended).toBe(1);
      expect(r.head!.contentLength).toBe(-1);
    }
  });

  test("close-delimited body ends at end of input", () => {
    const r = run(["HTTP/1.1 200 OK\r\n\r\npart1", "part2"]);
    expect(r.head!.keepAlive).toBe(false);
    expect(r.ended).toBe(0);
    expect(r.p.endOfInput()).toBe(true);
    expect(r.body).toBe("part1part2");
    expect(r.ended).toBe(1);
  });

  test("HEAD, 204 and 304 have no body", () => {
    expect(run(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"], true).ended).toBe(1);
    expect(run(["HTTP/1.1 204 No Content\r\n\r\n"]).ended).toBe(1);
    expect(run(["HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"]).ended).toBe(1);
  });

  test("1xx interim responses are skipped", () => {
    const r = run(["HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"]);
    expect(r.head!.status).toBe(201);
    expect(r.ended).toBe(1);
  });

  test("connection: close and HTTP/1.0", () => {
    expect(run(["HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"]).head!.keepAlive).toBe(false);
    expect(run(["HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"]).head!.keepAlive).toBe(false);
  });

  test("bytes after the end are reported", () => {
    expect(run(["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naEXTRA"]).left).toBe(5);
  });

  test("malformed heads throw", () => {
    expect(() => run(["HTTX/1.1 200 OK\r\n\r\n"])).toThrow();
    expect(() => run(["HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"])).toThrow();
    expect(() => run(["HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"])).toThrow();
    expect(() => run(["HTTP/1.1 200 OK\r\nno colon\r\n\r\n"])).toThrow();
    expect(() => run(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])).toThrow();
  });

  test("header names are matched case-insensitively on the bytes; look-alikes pass through", () => {
    const r = run([
      "HTTP/1.1 201 Created\r\nCONTENT-LENGTH: 2\r\nUwebSockets: 20\r\nDATE: x\r\nContent-Lengtx: 7\r\nX-Date: y\r\nKeep-Alive: timeout=5\r\nX-Empty:\r\n\r\nok",
    ]);
    expect(r.head!.statusText).toBe("201 Created");
    expect(r.head!.headers).toEqual(["Content-Lengtx", "7", "X-Date", "y", "X-Empty", ""]);
    expect(r.head!.contentLength).toBe(2);
    expect(r.body).toBe("ok");
  });

  test("a status line without a reason phrase, and HTTP/1.0 keep-alive", () => {
    const r = run(["HTTP/1.0 200\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"]);
    expect(r.head!.statusText).toBe("200 OK");
    expect(r.head!.keepAlive).toBe(true);
    expect(run(["HTTP/1.1 418\r\nContent-Length: 0\r\n\r\n"]).head!.statusText).toBe("418");
  });

  test("session cookie is noticed", () => {
    expect(run(["HTTP/1.1 200 OK\r\nSet-Cookie: JSESSIONID=abc; Path=/\r\nContent-Length: 0\r\n\r\n"]).head!.sessionCookie).toBe("JSESSIONID=abc; Path=/");
    const other = run(["HTTP/1.1 200 OK\r\nX-Cookie-1: JSESSIONID=abc\r\nContent-Length: 0\r\n\r\n"]).head!;
    expect(other.sessionCookie).toBeUndefined();
    expect(other.headers).toEqual(["X-Cookie-1", "JSESSIONID=abc"]);
  });
});

describe("ResponseParser over a shared read buffer", () => {
  test("stale bytes past the read length are never parsed", () => {
    const shared = Buffer.alloc(256, 0);
    const stale = Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcSTALE\r\n\r\n0\r\n\r\n", "latin1");
    stale.copy(shared);
    const p = new ResponseParser();
    let body = "";
    let ended = 0;
    let head = false;
    p.reset({ onHead: () => (head = true), onBody: (b) => (body += b.toString("latin1")), onEnd: () => ended++ }, false);
    // Only the first 20 bytes are real: the head is incomplete.
    expect(p.execute(shared, 20)).toBe(0);
    expect(head).toBe(false);
    const rest = stale.subarray(20, 41);
    rest.copy(shared);
    p.execute(shared, rest.length);
    expect(body).toBe("abc");
    expect(ended).toBe(1);
  });

  test("chunk lines do not read stale bytes", () => {
    const shared = Buffer.alloc(64, 0);
    const p = new ResponseParser();
    let body = "";
    p.reset({ onHead: () => {}, onBody: (b) => (body += b.toString("latin1")), onEnd: () => {} }, false);
    const first = Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5", "latin1");
    first.copy(shared);
    shared.write("\n", first.length, "latin1"); // a stale newline right after the real bytes
    p.execute(shared, first.length);
    const second = Buffer.from("\r\nhello\r\n0\r\n\r\n", "latin1");
    second.copy(shared);
    p.execute(shared, second.length);
    expect(body).toBe("hello");
    expect(p.done).toBe(true);
  });
});
