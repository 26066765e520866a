// The front-end's estimate of one back-end's active connections, built so that it converges on
// what the back-end holds (issue 10.3).
//
// Why the old scheme drifted: the front-end added every commit to a "since the last report" count
// and cleared it only when a LOAD arrived, while the agent skipped a LOAD equal to the previous
// one. A connection that opened and closed between two reports left a commit counted here and no
// report to clear it; a commit the agent never applied (prepared handoff already expired) was
// counted forever.
//
// The scheme now: per channel session (one authenticated connection; both sides restart their
// counts with it) the agent counts the COMMIT frames it has received, whatever their fate, and
// every LOAD carries that count next to `active`, read after those commits took effect. The
// front-end counts the COMMITs it sent. Its estimate is
//     reported active + (commits sent - commits the report includes) + handoffs awaiting an ACK.
// The middle term is exactly the commits in transit, never a guess: it is 0 as soon as a report
// includes the last commit, and the agent sends a report whenever either number changes. So after
// any mix of handoffs, refusals, aborts and expiries, one report after the traffic stops makes the
// estimate equal the truth. A lost channel or a restarted agent starts a new session: the old
// report and counts are dropped (the back-end is down meanwhile and the first LOAD of the new
// session follows AUTH_OK).
//
// Counts are u32 on the wire and wrap; the difference is taken mod 2^32.

export class LoadLedger {
  #reported = 0;
  #sent = 0;
  #included = 0;
  #awaitingAck = 0;

  /** A new channel session began (or the old one ended): nothing counted on the old one matters. */
  newSession(): void {
    this.#reported = 0;
    this.#sent = 0;
    this.#included = 0;
  }

  /** A HANDOFF was sent; its ACK (or failure) is awaited. */
  handoffSent(): void {
    this.#awaitingAck++;
  }

  /** The HANDOFF sent earlier was answered, refused, timed out or lost. */
  handoffAnswered(): void {
    if (this.#awaitingAck > 0) this.#awaitingAck--;
  }

  /** A COMMIT was written to the current session's channel. */
  commitSent(): void {
    this.#sent = (this.#sent + 1) >>> 0;
  }

  /** A LOAD arrived on the current session. */
  report(active: number, commits: number): void {
    this.#reported = active;
    this.#included = commits >>> 0;
  }

  /** Commits sent that no report includes yet. */
  get unreported(): number {
    const n = (this.#sent - this.#included) >>> 0;
    // A report can never include more than was sent on its session; if one claims to, trust it.
    return n > 0x7fff_ffff ? 0 : n;
  }

  /** The estimate given to the policies. */
  get active(): number {
    return this.#reported + this.unreported + this.#awaitingAck;
  }
}
