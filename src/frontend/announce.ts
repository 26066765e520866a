// Health <-> announcement (issue 11.2): a front-end announces the VIP only while it is ready — its data plane is
// loaded and at least one back-end's control channel is up — and withdraws it when it stops being ready and when it
// shuts down. baton does not speak BGP: it drives the host's routing daemon (BIRD 2) through its control socket,
// enabling or disabling the protocols that originate the VIP route (in BIRD, a `protocol static` exported to the
// BGP session; disabling it withdraws the route from the peers at once, the session stays up).
//
// The command building is pure (birdCommands, parseBirdReply); Announcer applies a wanted state, serialised, and
// re-applies it when a command fails (BIRD restarting), so the daemon only ever says "ready" or "not ready".
import { execFile } from 'node:child_process';
import { BatonError } from '../wire/errors.ts';

export interface BgpConfig {
  /** BIRD's control socket (`bird -s PATH`). */
  readonly birdSocket: string;
  /** The protocols that originate the VIP route (e.g. the `protocol static vip4` the route is exported from). */
  readonly protocols: readonly string[];
  /** The birdc binary. Default `birdc`. */
  readonly birdc?: string;
}

export class AnnounceError extends BatonError {
  constructor(message: string) {
    super('BATON_ERR_ANNOUNCE', message);
  }
}

/** The birdc invocations (argv after the binary) that announce (enable) or withdraw (disable) the VIP. */
export function birdCommands(c: BgpConfig, announce: boolean): string[][] {
  return c.protocols.map((p) => ['-s', c.birdSocket, announce ? 'enable' : 'disable', p]);
}

/**
 * Whether birdc's output reports success for an enable/disable of `protocol`. BIRD answers "<name>: enabled",
 * "<name>: disabled", "<name>: already enabled" or "<name>: already disabled"; anything else (syntax error,
 * unknown protocol, no socket) is a failure.
 */
export function parseBirdReply(protocol: string, announce: boolean, output: string): boolean {
  const want = announce ? 'enabled' : 'disabled';
  return output.split('\n').some((l) => {
    const t = l.trim();
    return t === `${protocol}: ${want}` || t === `${protocol}: already ${want}`;
  });
}

export type Runner = (file: string, args: readonly string[]) => Promise<string>;

const execRunner: Runner = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: 5000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new AnnounceError(`${file} ${args.join(' ')}: ${err.message} ${stderr}`.trim()));
      else resolve(stdout);
    });
  });

export interface AnnouncerOptions {
  readonly bgp: BgpConfig;
  readonly log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  /** Runs birdc (tests replace it). */
  readonly run?: Runner;
  /** Retry delay after a failed command (ms). Default 1000. */
  readonly retryMs?: number;
}

export class Announcer {
  readonly #o: AnnouncerOptions;
  #want = false;
  /** What BIRD was last told successfully (undefined: nothing yet). */
  #applied: boolean | undefined;
  #chain: Promise<void> = Promise.resolve();
  #retry: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: AnnouncerOptions) {
    this.#o = o;
  }

  /** Whether the VIP is announced now (as far as BIRD last confirmed). */
  get announced(): boolean {
    return this.#applied === true;
  }

  /** Wants the VIP announced (ready) or withdrawn. Resolves once BIRD has been told (or the attempt failed). */
  set(ready: boolean): Promise<void> {
    this.#want = ready;
    this.#chain = this.#chain.then(() => this.#apply());
    return this.#chain;
  }

  /** Withdraws and stops retrying: for shutdown. */
  async close(): Promise<void> {
    await this.set(false);
    this.#closed = true;
    clearTimeout(this.#retry);
  }

  async #apply(): Promise<void> {
    const want = this.#want;
    if (this.#applied === want || this.#closed) return;
    const run = this.#o.run ?? execRunner;
    const bin = this.#o.bgp.birdc ?? 'birdc';
    try {
      const cmds = birdCommands(this.#o.bgp, want);
      for (let i = 0; i < cmds.length; i++) {
        const out = await run(bin, cmds[i]!);
        const proto = this.#o.bgp.protocols[i]!;
        if (!parseBirdReply(proto, want, out)) throw new AnnounceError(`birdc ${want ? 'enable' : 'disable'} ${proto}: ${out.trim()}`);
      }
      this.#applied = want;
      this.#o.log.info({ protocols: this.#o.bgp.protocols }, want ? 'VIP announced' : 'VIP withdrawn');
    } catch (e) {
      this.#applied = undefined;
      this.#o.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'BGP announcement change failed; retrying');
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => void this.set(this.#want), this.#o.retryMs ?? 1000);
      this.#retry.unref();
    }
  }
}
