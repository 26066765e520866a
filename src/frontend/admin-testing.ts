// A fake AdminTarget for the admin server's and the CLI's tests: back-ends and flows held in
// memory; drain and reload change them as the real front-end would be asked to.
import { ADMIN_ERR, AdminError, type AdminBackend, type AdminFlow, type AdminStatus, type AdminTarget, type DrainReport, type ReloadReport } from './admin.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class FakeAdminTarget implements AdminTarget {
  readonly backendList: Mutable<AdminBackend>[];
  flowList: AdminFlow[];
  reloadAnswer: ReloadReport = { ok: true, changes: [] };
  reloads = 0;

  constructor(ids: readonly string[] = ['b1', 'b2'], flows: AdminFlow[] = []) {
    this.backendList = ids.map((id, i) => ({
      id, address: `10.77.0.${11 + i}`, weight: 1, channel: 'up', health: 'none', drained: false, removed: false,
      eligible: true, active: 0, handoffs: 0, failures: 0,
    }));
    this.flowList = flows;
  }

  status(): AdminStatus {
    return {
      pid: process.pid, vip: '10.77.0.100', port: 80, uptimeS: 12, configFile: '/etc/baton/frontend.json',
      configLoadedAt: new Date(0).toISOString(), reloads: this.reloads, accepted: 10, handedOff: 9, pending: 0,
      backends: this.backendList.length, eligible: this.backendList.filter((b) => b.eligible).length, flows: this.flowList.length,
    };
  }

  backends(): readonly AdminBackend[] {
    return this.backendList;
  }

  async flows(filter: { readonly backend?: string }): Promise<readonly AdminFlow[]> {
    return this.flowList.filter((f) => filter.backend === undefined || f.backend === filter.backend);
  }

  #find(id: string): Mutable<AdminBackend> {
    const b = this.backendList.find((x) => x.id === id);
    if (!b) throw new AdminError(ADMIN_ERR.UNKNOWN_BACKEND, `no back-end "${id}"`);
    return b;
  }

  drain(id: string): DrainReport {
    const b = this.#find(id);
    b.drained = true;
    b.eligible = false;
    return { id, drained: true, active: b.active, moved: 0 };
  }

  undrain(id: string): DrainReport {
    const b = this.#find(id);
    b.drained = false;
    b.eligible = b.channel === 'up' && b.health !== 'down' && !b.removed && b.weight > 0;
    return { id, drained: false, active: b.active, moved: 0 };
  }

  async reload(): Promise<ReloadReport> {
    if (this.reloadAnswer.ok) this.reloads++;
    return this.reloadAnswer;
  }
}
