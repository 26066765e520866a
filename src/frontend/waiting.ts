// Connections accepted and still sending their first bytes (an HTTP request head or a TLS ClientHello), oldest
// first, shared by the HTTP and TLS listeners under one limit (limits.maxPending).
//
// At the limit the connection that has waited longest is expired to make room, rather than refusing the new one: a
// client that holds connections open without finishing its head (slowloris) cannot starve new clients, whose first
// bytes take milliseconds. Seen in a lab before this existed: 4,300 such connections from one client made every new
// request a 503 until their head timeout.

export class WaitingClients {
  /** Each waiting connection's expiry (answer or close it, and forget it), in arrival order. */
  readonly #expire = new Set<() => void>();
  #shed = 0;

  get count(): number {
    return this.#expire.size;
  }

  /** Connections expired early to make room. */
  get shed(): number {
    return this.#shed;
  }

  /**
   * Whether one more may wait under `max`: at the limit the oldest waiting connection is expired first (its expiry
   * must call `done`). False only when nothing can be shed (max 0, or a reload lowered it below the count).
   */
  admit(max: number): boolean {
    if (this.#expire.size < max) return true;
    const oldest = this.#expire.values().next();
    if (oldest.done === true) return false;
    this.#shed++;
    oldest.value();
    this.#expire.delete(oldest.value); // in case the expiry did not
    return this.#expire.size < max;
  }

  add(expire: () => void): void {
    this.#expire.add(expire);
  }

  done(expire: () => void): void {
    this.#expire.delete(expire);
  }
}
