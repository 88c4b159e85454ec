// Route changes waiting to be applied, as bytes in one growable buffer: [op u8][length u32][arrived
// at f64, ms][message].
// A burst of a million registrations would otherwise be a million small objects and copied
// Uint8Arrays, promoted to the old generation while they wait and left there as garbage that every
// young-generation pause walks until the next full collection.

export const REGISTER = 0;
export const UNREGISTER = 1;
const HEADER = 13;

export class ChangeQueue {
  private buf = new Uint8Array(64 * 1024);
  private view = new DataView(this.buf.buffer);
  private head = 0;
  private tail = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  /** `arrivedAt`: when it came off the bus (performance.now()), for the change-delay figures */
  push(op: typeof REGISTER | typeof UNREGISTER, data: Uint8Array, arrivedAt = 0): void {
    const need = HEADER + data.length;
    if (this.tail + need > this.buf.length) this.makeRoom(need);
    const b = this.buf;
    const t = this.tail;
    b[t] = op;
    b[t + 1] = data.length & 255;
    b[t + 2] = (data.length >>> 8) & 255;
    b[t + 3] = (data.length >>> 16) & 255;
    b[t + 4] = data.length >>> 24;
    this.view.setFloat64(t + 5, arrivedAt, true);
    b.set(data, t + HEADER);
    this.tail = t + need;
    this.count++;
  }

  /** The op of the oldest change, or -1 when empty; read its bytes with `data()` before `shift()`. */
  peekOp(): number {
    return this.count === 0 ? -1 : this.buf[this.head]!;
  }

  /** When the oldest change arrived (push's arrivedAt). */
  peekArrival(): number {
    return this.count === 0 ? 0 : this.view.getFloat64(this.head + 5, true);
  }

  /** The oldest change's message (a view into the queue, valid until the next push). */
  data(): Uint8Array {
    const b = this.buf;
    const h = this.head;
    const n = b[h + 1]! | (b[h + 2]! << 8) | (b[h + 3]! << 16) | (b[h + 4]! << 24);
    return b.subarray(h + HEADER, h + HEADER + n);
  }

  shift(): void {
    if (this.count === 0) return;
    const h = this.head;
    const b = this.buf;
    this.head = h + HEADER + (b[h + 1]! | (b[h + 2]! << 8) | (b[h + 3]! << 16) | (b[h + 4]! << 24));
    if (--this.count === 0) this.head = this.tail = 0;
  }

  private makeRoom(need: number): void {
    const live = this.tail - this.head;
    let size = this.buf.length;
    while (live + need > size / 2) size *= 2; // keep at least half free after moving, or grow
    const next = size === this.buf.length ? this.buf : new Uint8Array(size);
    if (next === this.buf) this.buf.copyWithin(0, this.head, this.tail);
    else next.set(this.buf.subarray(this.head, this.tail));
    this.buf = next;
    this.view = new DataView(next.buffer);
    this.head = 0;
    this.tail = live;
  }
}
