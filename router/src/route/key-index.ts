// A hash index from string keys to the route table's numeric ids (route key → pool id, host:port →
// endpoint id), kept in typed arrays: open addressing with linear probing and backward-shift deletion
// (no tombstones, so churn never slows lookups down). The keys themselves are not copied here: each
// id's key is a string in the table's ByteArena, found through `keyOffset(id)`.

import type { ByteArena } from "./byte-arena.ts";

const EMPTY = 0; // slots hold id + 1

export class KeyIndex {
  private slots: Int32Array;
  private hashes: Int32Array;
  private mask: number;
  private count = 0;

  constructor(
    private readonly arena: ByteArena,
    private readonly keyOffset: (id: number) => number,
    /** keys to make room for up front (see RegistryOptions.reserveRoutes): no rehash until then */
    reserve = 8,
  ) {
    const size = 1 << Math.max(4, 32 - Math.clz32(2 * reserve - 1));
    this.slots = new Int32Array(size);
    this.hashes = new Int32Array(size);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  /** The id whose key is the first n bytes of the arena's scratch (see ByteArena.encode), or -1. */
  findScratch(n: number): number {
    const h = this.arena.hashScratch(n);
    const { slots, hashes, mask } = this;
    for (let i = h & mask; slots[i] !== EMPTY; i = (i + 1) & mask) {
      const id = slots[i]! - 1;
      if (hashes[i] === h && this.arena.equalsScratch(this.keyOffset(id), n)) return id;
    }
    return -1;
  }

  find(key: string): number {
    return this.findScratch(this.arena.encode(key));
  }

  /** Indexes id under its key (already in the arena); the caller has checked the key is not indexed. */
  insert(id: number): void {
    if ((this.count + 1) * 2 > this.slots.length) this.grow();
    this.place(id, this.arena.hashAt(this.keyOffset(id)));
    this.count++;
  }

  /** Removes id (under its key, still in the arena); false if it was not indexed. */
  delete(id: number): boolean {
    const { slots, hashes, mask } = this;
    let i = this.arena.hashAt(this.keyOffset(id)) & mask;
    for (; slots[i] !== id + 1; i = (i + 1) & mask) if (slots[i] === EMPTY) return false;
    // Backward shift: move later entries of the probe run into the hole when the hole lies between
    // their home slot and where they sit, so every entry stays reachable from its home slot.
    for (let j = (i + 1) & mask; slots[j] !== EMPTY; j = (j + 1) & mask) {
      const home = hashes[j]! & mask;
      const between = i <= j ? home <= i || home > j : home <= i && home > j;
      if (!between) continue;
      slots[i] = slots[j]!;
      hashes[i] = hashes[j]!;
      i = j;
    }
    slots[i] = EMPTY;
    this.count--;
    return true;
  }

  private place(id: number, h: number): void {
    const { slots, mask } = this;
    let i = h & mask;
    while (slots[i] !== EMPTY) i = (i + 1) & mask;
    slots[i] = id + 1;
    this.hashes[i] = h;
  }

  private grow(): void {
    const { slots, hashes } = this;
    this.slots = new Int32Array(slots.length * 2);
    this.hashes = new Int32Array(slots.length * 2);
    this.mask = this.slots.length - 1;
    for (let i = 0; i < slots.length; i++) if (slots[i] !== EMPTY) this.place(slots[i]! - 1, hashes[i]!);
  }
}
