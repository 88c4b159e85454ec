// One sequence counter for the whole route table, so that worker threads read it without locks while
// one writer changes it (a seqlock): the writer makes the counter odd before a change and even after;
// a reader notes the counter, reads, and keeps what it read only if the counter is still the same
// even number. A reader never waits for a lock and never sees half a change; the writer never waits
// for readers. Changes are short (one registration: a few µs), so a read that meets one retries once.
// The counter lives in the table's shared control block (TableControl).

/** slots of the control block (an Int32Array on a SharedArrayBuffer) */
export const TableControl = {
  /** the sequence counter: odd while a change is under way */
  seq: 0,
  /** 1 while the router drains: every response says Connection: close */
  draining: 1,
  /** bumped by every change that made or dropped a route */
  routes: 2,
  /** bumped when a column or the arena grew: readers make new views of the longer buffers */
  layout: 3,
  size: 16,
} as const;

export class TableSeqlock {
  /** a change is under way (the counter is odd) */
  private open = false;
  /** hold() calls not yet released: end() waits for them */
  private holds = 0;

  constructor(readonly control: Int32Array) {}

  /** A new control block (shared, zeroed). */
  static newControl(): Int32Array {
    return new Int32Array(new SharedArrayBuffer(TableControl.size * 4));
  }

  /** Called before anything readers can see is written; idempotent until end(). */
  begin(): void {
    if (this.open) return;
    this.open = true;
    Atomics.add(this.control, TableControl.seq, 1);
  }

  /** The change is complete: readers may trust what they read from now on. */
  end(): void {
    if (!this.open || this.holds > 0) return;
    this.open = false;
    Atomics.add(this.control, TableControl.seq, 1);
  }

  /** Makes everything until release() one change, whatever begin()/end() pairs run inside. */
  hold(): void {
    this.holds++;
    this.begin();
  }

  release(): void {
    if (--this.holds === 0) this.end();
  }

  /**
   * The counter at the start of a read, once no change is under way. Spins while one is: changes
   * take microseconds, and the reader is a request that has nothing better to do meanwhile.
   */
  readBegin(): number {
    if (this.open) return 0; // the writer reading inside its own change: nothing to wait for
    const control = this.control;
    for (;;) {
      const seq = Atomics.load(control, TableControl.seq);
      if ((seq & 1) === 0) return seq;
    }
  }

  /** Whether what was read since readBegin() returned `seq` is one consistent state of the table. */
  readValid(seq: number): boolean {
    return this.open || Atomics.load(this.control, TableControl.seq) === seq;
  }
}
