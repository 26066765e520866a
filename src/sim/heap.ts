// The simulator's event queue: a binary min-heap of (time, sequence) -> slot in typed arrays,
// so that millions of events allocate nothing. Equal times pop in insertion order.

export class EventHeap {
  #time: Float64Array;
  #seq: Float64Array;
  #slot: Int32Array;
  #size = 0;
  #nextSeq = 0;

  constructor(capacity = 1024) {
    this.#time = new Float64Array(capacity);
    this.#seq = new Float64Array(capacity);
    this.#slot = new Int32Array(capacity);
  }

  get size(): number {
    return this.#size;
  }

  push(time: number, slot: number): void {
    if (this.#size === this.#time.length) this.#grow();
    let i = this.#size++;
    const seq = this.#nextSeq++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#before(time, seq, p)) break;
      this.#move(p, i);
      i = p;
    }
    this.#time[i] = time;
    this.#seq[i] = seq;
    this.#slot[i] = slot;
  }

  /** Time of the earliest event; only valid when size > 0. */
  peekTime(): number {
    return this.#time[0]!;
  }

  /** Removes the earliest event and returns its slot; only valid when size > 0. */
  pop(): number {
    const top = this.#slot[0]!;
    const last = --this.#size;
    const time = this.#time[last]!;
    const seq = this.#seq[last]!;
    const slot = this.#slot[last]!;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= last) break;
      const r = l + 1;
      const c = r < last && this.#lessAt(r, l) ? r : l;
      if (!this.#lessThan(c, time, seq)) break;
      this.#move(c, i);
      i = c;
    }
    this.#time[i] = time;
    this.#seq[i] = seq;
    this.#slot[i] = slot;
    return top;
  }

  #before(time: number, seq: number, j: number): boolean {
    const t = this.#time[j]!;
    return time < t || (time === t && seq < this.#seq[j]!);
  }

  #lessThan(j: number, time: number, seq: number): boolean {
    const t = this.#time[j]!;
    return t < time || (t === time && this.#seq[j]! < seq);
  }

  #lessAt(a: number, b: number): boolean {
    return this.#lessThan(a, this.#time[b]!, this.#seq[b]!);
  }

  #move(from: number, to: number): void {
    this.#time[to] = this.#time[from]!;
    this.#seq[to] = this.#seq[from]!;
    this.#slot[to] = this.#slot[from]!;
  }

  #grow(): void {
    const n = this.#time.length * 2;
    const t = new Float64Array(n);
    const s = new Float64Array(n);
    const x = new Int32Array(n);
    t.set(this.#time);
    s.set(this.#seq);
    x.set(this.#slot);
    this.#time = t;
    this.#seq = s;
    this.#slot = x;
  }
}
