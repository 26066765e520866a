// A back-end's file cache: least-recently-used eviction bounded by bytes. Each entry also
// records when its data is in memory (readyAt), so a request that arrives while the first
// miss is still reading from disk waits for that read instead of issuing another.

export class ByteLru {
  /** key -> readyAt (µs). Map order is recency order: oldest first. */
  readonly #entries = new Map<number, number>();
  #used = 0;

  constructor(
    readonly capacityBytes: number,
    readonly sizeOf: (key: number) => number,
  ) {}

  get usedBytes(): number {
    return this.#used;
  }

  get count(): number {
    return this.#entries.size;
  }

  /** readyAt (µs) if cached, refreshing its recency; undefined on a miss. */
  lookup(key: number): number | undefined {
    const readyAt = this.#entries.get(key);
    if (readyAt !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, readyAt);
    }
    return readyAt;
  }

  /** Caches key, evicting least recently used entries; objects larger than the cache are not cached. */
  insert(key: number, readyAt: number): void {
    const size = this.sizeOf(key);
    if (size > this.capacityBytes) return;
    if (this.#entries.delete(key)) this.#used -= size;
    this.#used += size;
    this.#entries.set(key, readyAt);
    while (this.#used > this.capacityBytes) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
      this.#used -= this.sizeOf(oldest.value);
    }
  }
}
