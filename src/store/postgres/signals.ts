import pg from 'pg';
import type { FhirVersion } from '../../fhir/types.ts';
import { FOLLOWED_TYPES, type RemoteCommit } from '../store.ts';

/** The PostgreSQL channel on which every commit that wrote something is announced. */
export const CHANNEL = 'herald_commits';
const VERSIONS: readonly FhirVersion[] = ['R4', 'R4B', 'R5'];
/** NOTIFY payloads must stay under 8,000 bytes; past this a commit is announced as "everything". */
const MAX_PAYLOAD = 7000;

/** What one transaction touched, per FHIR version, for its announcement. */
export class Touched {
  readonly #byFv = new Map<FhirVersion, { s: Set<string>; r: [string, string][] }>();
  #of(fv: FhirVersion) {
    let t = this.#byFv.get(fv);
    if (!t) this.#byFv.set(fv, (t = { s: new Set(), r: [] }));
    return t;
  }
  resource(fv: FhirVersion, type: string, id: string): void {
    // Other nodes follow Subscriptions and topics only: a plain write is not announced at all.
    if (FOLLOWED_TYPES.has(type)) this.#of(fv).r.push([type, id]);
  }
  subscriptions(fv: FhirVersion, ids: string[]): void {
    const t = this.#of(fv);
    for (const id of ids) t.s.add(id);
  }
  /** The NOTIFY payload (undefined when nothing was touched). */
  payload(node: string): string | undefined {
    if (this.#byFv.size === 0) return undefined;
    const c = [...this.#byFv].map(([fv, t]) => ({ fv, s: [...t.s], r: t.r }));
    const full = JSON.stringify({ n: node, c });
    return full.length <= MAX_PAYLOAD ? full : JSON.stringify({ n: node, c: c.map(({ fv }) => ({ fv, all: 1 })) });
  }
}

/**
 * One round trip that NOTIFYs `payload` in a transaction of its own, committed without waiting for
 * its WAL flush (synchronous_commit off): see announce() in index.ts for why not in the write's.
 */
export function announcement(payload: string, literal: (text: string) => string): string {
  return `BEGIN; SET LOCAL synchronous_commit TO OFF; SELECT pg_notify('${CHANNEL}', ${literal(payload)}); COMMIT`;
}

interface Payload {
  n: string;
  c: { fv: FhirVersion; s?: string[]; r?: [string, string][]; all?: 1; l?: string[] }[];
}

/** The NOTIFY payload telling the other nodes that `node` gave up its delivery leases on `ids`. */
export function releasedPayload(node: string, fv: FhirVersion, ids: string[]): string {
  const full = JSON.stringify({ n: node, c: [{ fv, l: ids }] } satisfies Payload);
  // Too many to name: the others find out when the leases they saw would have expired.
  return full.length <= MAX_PAYLOAD ? full : JSON.stringify({ n: node, c: [{ fv, l: [] }] } satisfies Payload);
}

/**
 * Listens for the other nodes' commits on a connection of its own (LISTEN). Each is announced
 * right after it committed (announce() in index.ts), so announcements of concurrent commits may
 * arrive in another order than the commits: a wake-up only says what to read again, and readers
 * go on from their stored cursors, so the order does not matter. A lost wake-up costs only
 * latency: the log is also polled (every `pollMs`, every subscription is looked at), and after a
 * reconnection everything is looked at again, since announcements may have been missed meanwhile.
 */
export class CommitListener {
  #client: pg.Client | undefined;
  #closed = false;
  readonly #poll: NodeJS.Timeout;
  #retry: NodeJS.Timeout | undefined;
  #heard!: () => void;
  /**
   * Settles once the first LISTEN is in place, or has failed (then a reconnection announces
   * everything, as after any lost connection): commits made before it are not heard.
   */
  readonly listening = new Promise<void>((resolve) => (this.#heard = resolve));

  constructor(
    private readonly url: string,
    private readonly node: string,
    private readonly emit: (commit: RemoteCommit) => void,
    pollMs: number,
  ) {
    this.#poll = setInterval(() => this.#everything(false), pollMs);
    this.#poll.unref();
    void this.#connect(false);
  }

  #everything(resources: boolean): void {
    for (const fv of VERSIONS) this.emit({ fv, subscriptions: 'all', resources: resources ? 'all' : [] });
  }

  async #connect(again: boolean): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client({ connectionString: this.url, keepAlive: true });
    const lost = () => {
      if (this.#client !== client) return;
      this.#client = undefined;
      client.end().catch(() => {});
      if (!this.#closed) this.#retry = setTimeout(() => void this.#connect(true), 1000);
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (m) => {
      if (m.channel === CHANNEL && m.payload) this.#received(m.payload);
    });
    this.#client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      if (again) this.#everything(true);
    } catch {
      lost();
    } finally {
      this.#heard();
    }
  }

  #received(text: string): void {
    let p: Payload;
    try {
      p = JSON.parse(text) as Payload;
    } catch {
      return;
    }
    if (p.n === this.node) return;
    for (const c of p.c) {
      if (c.all) this.emit({ fv: c.fv, subscriptions: 'all', resources: 'all' });
      else this.emit({ fv: c.fv, subscriptions: c.s ?? [], resources: (c.r ?? []).map(([type, id]) => ({ type, id })), ...(c.l ? { released: c.l } : {}) });
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#heard();
    clearInterval(this.#poll);
    clearTimeout(this.#retry);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }
}
