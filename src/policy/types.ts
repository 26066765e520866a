// The request-distribution contract between the front-end and every policy.
// Pure: policies see a request and a snapshot of back-end state, and answer synchronously.

export type BackendId = string & { readonly __brand: 'BackendId' };
export const backendId = (s: string): BackendId => s as BackendId;

/** What a policy may look at in a request. Header names are lower-case. */
export interface RequestInfo {
  readonly method: string;
  /** The request-target as sent (origin-form, e.g. "/img/a.png?x=1"). */
  readonly target: string;
  /** target without the query string. */
  readonly path: string;
  /** Host header without port, lower-case; "" when absent. */
  readonly host: string;
  readonly headers: ReadonlyMap<string, string>;
  /**
   * For connections on a TLS listener: the ClientHello's server_name (lower-case), undefined
   * when the client sent none or the connection is not TLS.
   */
  readonly sni?: string | undefined;
  /** For connections on a TLS listener: the ALPN protocols the client offered, in order. */
  readonly alpn?: readonly string[] | undefined;
}

/**
 * The RequestInfo of a connection on a TLS listener, which is routed before any HTTP is
 * readable: no method, target, path or headers; host is the SNI (so host rules and a
 * host-keyed policy see it), or "" without one.
 */
export const tlsRequestInfo = (hello: { readonly sni: string | undefined; readonly alpn: readonly string[] }): RequestInfo => ({
  method: '',
  target: '',
  path: '',
  host: hello.sni ?? '',
  headers: new Map(),
  sni: hello.sni,
  alpn: hello.alpn,
});

/** Live state of one back-end as the front-end sees it at pick time. */
export interface BackendView {
  readonly id: BackendId;
  readonly up: boolean;
  /** Relative weight; 0 means "take no new requests". */
  readonly weight: number;
  /** Active connections: the back-end's own report combined with handoffs in flight. */
  readonly active: number;
}

export type PickResult =
  | { readonly kind: 'backend'; readonly id: BackendId }
  | { readonly kind: 'none'; readonly reason: string };

/**
 * A request-distribution policy. pick() is synchronous and may update the policy's own
 * state (LARD's target assignments). Time is passed in so tests and the simulator are
 * deterministic.
 */
export interface Policy {
  readonly name: string;
  pick(req: RequestInfo, backends: readonly BackendView[], nowMs: number): PickResult;
}

/**
 * Optional capability of a policy: a bound on the requests the front-end keeps outstanding
 * in total across the pool (LARD's admission limit S). The front-end queues beyond it.
 */
export interface AdmissionControl {
  maxOutstanding(eligibleBackends: number): number;
}

export const hasAdmissionControl = (p: Policy): p is Policy & AdmissionControl =>
  typeof (p as Partial<AdmissionControl>).maxOutstanding === 'function';
