// WebSocket framing for the upstream side of a proxied WebSocket (RFC 6455): uWS speaks to the client
// and hands us whole messages, so towards the backend the router is a WebSocket client. It masks
// what it sends and parses what the backend sends (unmasked), reassembling fragmented messages.

import { randomFillSync } from "node:crypto";

export const Opcode = { Continuation: 0, Text: 1, Binary: 2, Close: 8, Ping: 9, Pong: 10 } as const;

const masks = Buffer.alloc(4096);
let maskAt = masks.length;

function nextMask(): Buffer {
  if (maskAt + 4 > masks.length) {
    randomFillSync(masks);
    maskAt = 0;
  }
  const m = masks.subarray(maskAt, maskAt + 4);
  maskAt += 4;
  return m;
}

/** One masked frame, as a client sends it. */
export function encodeClientFrame(opcode: number, payload: Uint8Array): Buffer {
  const n = payload.length;
  const headerLength = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + 4 + n);
  frame[0] = 0x80 | opcode;
  if (n < 126) frame[1] = 0x80 | n;
  else if (n < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    frame.writeUInt32BE(n >>> 0, 6);
  }
  const mask = nextMask();
  mask.copy(frame, headerLength);
  const at = headerLength + 4;
  for (let i = 0; i < n; i++) frame[at + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}

export interface FrameSink {
  onMessage(payload: Buffer, isBinary: boolean): void;
  onPing(payload: Buffer): void;
  onClose(code: number, reason: Buffer): void;
}

export class FrameProtocolError extends Error {
  override name = "FrameProtocolError";
}

/** Parses frames from the backend; whole messages go to the sink. */
export class FrameParser {
  private pending: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentOpcode = 0;
  private fragmentBytes = 0;

  constructor(
    private readonly sink: FrameSink,
    private readonly maxMessageBytes: number,
  ) {}

  push(data: Buffer): void {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
    let pos = 0;
    for (;;) {
      if (buf.length - pos < 2) break;
      const b0 = buf[pos]!;
      const b1 = buf[pos + 1]!;
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let at = pos + 2;
      if (len === 126) {
        if (buf.length - at < 2) break;
        len = buf.readUInt16BE(at);
        at += 2;
      } else if (len === 127) {
        if (buf.length - at < 8) break;
        len = buf.readUInt32BE(at) * 2 ** 32 + buf.readUInt32BE(at + 4);
        at += 8;
      }
      if (len > this.maxMessageBytes) throw new FrameProtocolError(`frame of ${len} bytes is over the limit`);
      const maskAt = at;
      if (masked) at += 4;
      if (buf.length - at < len) break;
      let payload = buf.subarray(at, at + len);
      if (masked) {
        payload = Buffer.from(payload);
        for (let i = 0; i < len; i++) payload[i]! ^= buf[maskAt + (i & 3)]!;
      }
      pos = at + len;
      this.onFrame(fin, opcode, payload);
    }
    this.pending = pos < buf.length ? Buffer.from(buf.subarray(pos)) : Buffer.alloc(0);
  }

  private onFrame(fin: boolean, opcode: number, payload: Buffer): void {
    if (opcode === Opcode.Ping) return this.sink.onPing(payload);
    if (opcode === Opcode.Pong) return;
    if (opcode === Opcode.Close) return this.sink.onClose(payload.length >= 2 ? payload.readUInt16BE(0) : 1005, payload.subarray(2));
    if (opcode === Opcode.Text || opcode === Opcode.Binary) {
      if (this.fragments.length > 0) throw new FrameProtocolError("new message inside a fragmented one");
      if (fin) return this.sink.onMessage(payload, opcode === Opcode.Binary);
      this.fragmentOpcode = opcode;
    } else if (opcode !== Opcode.Continuation || this.fragments.length === 0) {
      throw new FrameProtocolError(`unexpected opcode ${opcode}`);
    }
    this.fragments.push(Buffer.from(payload));
    this.fragmentBytes += payload.length;
    if (this.fragmentBytes > this.maxMessageBytes) throw new FrameProtocolError("message over the limit");
    if (fin) {
      const whole = Buffer.concat(this.fragments);
      this.fragments = [];
      this.fragmentBytes = 0;
      this.sink.onMessage(whole, this.fragmentOpcode === Opcode.Binary);
    }
  }
}
