import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { FhirVersion } from '../../fhir/types.ts';
import type { SearchRequest } from '../../search/types.ts';
import { searchSteps } from '../search-run.ts';
import type { Dialect } from '../search-sql.ts';
import { KEY_CHARS } from './schema.ts';
import type {
  BindingToken,
  DeliveryState,
  HistoryPage,
  HistoryQuery,
  IndexState,
  ResourceKey,
  SearchCursor,
  SearchPage,
  StoredEvent,
  StoredVersion,
  SubscriptionOwner,
} from '../store.ts';
import { HISTORY_COLUMNS, type VersionRow, toHistoryVersion, toVersion } from '../version-row.ts';

/**
 * One statement with `$n` parameters, on the pool or on a transaction's connection: its rows.
 * `prepared`: run it as a named prepared statement (parsed and planned once
 * per connection, then only bound and executed); for the few statement shapes every write repeats.
 */
export type Query = (sql: string, args?: unknown[], prepared?: boolean) => Promise<Record<string, unknown>[]>;

const preparedNames = new Map<string, string>();

/** The statement as pg's query config: named by a hash of its text when prepared. */
export function statement(sql: string, args: unknown[] | undefined, prepared: boolean | undefined): pg.QueryConfig {
  if (!prepared) return { text: sql, ...(args ? { values: args } : {}) };
  let name = preparedNames.get(sql);
  if (!name) {
    name = `h_${createHash('sha1').update(sql).digest('hex').slice(0, 24)}`;
    if (preparedNames.size < 10_000) preparedNames.set(sql, name);
  }
  return { name, text: sql, ...(args ? { values: args } : {}) };
}

/** The shared search SQL (search-sql.ts) in PostgreSQL's spelling. */
export const dialect: Dialect = {
  contains: (h, n) => `strpos(${h}, ${n}) > 0`,
  unindexed: '',
  lastChar: (text) => `right(${text}, 1)`,
  keyChars: KEY_CHARS,
};

/** `?` placeholders (the shared search SQL's) as `$1`, `$2`, … (that SQL has no `?` in literals). */
export function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}



export async function indexState(q: Query, fv: FhirVersion): Promise<IndexState> {
  const rows = await q('SELECT state FROM index_state WHERE fv = $1', [fv]);
  return rows.length === 0 ? {} : (JSON.parse(rows[0]!.state as string) as IndexState);
}

/** Store.currentVersions: live current versions after `after`, in (type, id) order (COLLATE "C": code points, as SQLite). */
export async function currentVersions(q: Query, fv: FhirVersion, after: ResourceKey | undefined, limit: number): Promise<StoredVersion[]> {
  const rows = await q(
    `SELECT v.type, v.id, v.vid, v.last_updated, v.method, v.body FROM resources r JOIN resource_versions v ON v.seq = r.seq
     WHERE r.fv = $1 AND r.deleted = 0 ${after ? 'AND (r.type, r.id) > ($3, $4)' : ''} ORDER BY r.type, r.id LIMIT $2`,
    after ? [fv, limit, after.type, after.id] : [fv, limit],
  );
  return (rows as unknown as VersionRow[]).map(toVersion);
}

export async function read(q: Query, fv: FhirVersion, type: string, id: string): Promise<StoredVersion | undefined> {
  const rows = await q(
    `SELECT v.type, v.id, v.vid, v.last_updated, v.method, v.body FROM resources r
     JOIN resource_versions v ON v.fv = r.fv AND v.type = r.type AND v.id = r.id AND v.vid = r.vid
     WHERE r.fv = $1 AND r.type = $2 AND r.id = $3`,
    [fv, type, id],
    true,
  );
  return rows[0] && toVersion(rows[0] as unknown as VersionRow);
}

export async function vread(q: Query, fv: FhirVersion, type: string, id: string, versionId: number): Promise<StoredVersion | undefined> {
  const rows = await q('SELECT type, id, vid, last_updated, method, body FROM resource_versions WHERE fv = $1 AND type = $2 AND id = $3 AND vid = $4', [
    fv,
    type,
    id,
    versionId,
  ]);
  return rows[0] && toVersion(rows[0] as unknown as VersionRow);
}

/** The shared search steps (search-run.ts), one awaited query each. */
export async function search(q: Query, fv: FhirVersion, req: SearchRequest, now: number, cursor?: SearchCursor): Promise<SearchPage> {
  const steps = searchSteps(dialect, fv, req, now, cursor);
  let step = steps.next();
  while (!step.done) {
    const { sql, args } = step.value;
    step = steps.next(await q(numbered(sql), args));
  }
  return step.value;
}

export async function events(q: Query, fv: FhirVersion, subscription: string, from: number, to: number, limit: number): Promise<StoredEvent[]> {
  const rows = await q(
    `SELECT e.subscription, e.number, c.ts, c.focus_type, c.focus_id, c.focus_vid, c.interaction
     FROM subscription_events e JOIN changes c ON c.id = e.change
     WHERE e.fv = $1 AND e.subscription = $2 AND e.number >= $3 AND e.number <= $4 ORDER BY e.number LIMIT $5`,
    [fv, subscription, from, to, limit],
  );
  return rows.map((r) => ({
    subscription: r.subscription as string,
    number: Number(r.number),
    timestamp: r.ts as string,
    focus: { type: r.focus_type as string, id: r.focus_id as string, versionId: r.focus_vid as number },
    interaction: r.interaction as StoredEvent['interaction'],
  }));
}

export async function eventRange(q: Query, fv: FhirVersion, subscription: string): Promise<{ last: number; first: number | undefined }> {
  const rows = await q(
    `SELECT (SELECT last_number FROM subscription_counters WHERE fv = $1 AND subscription = $2) AS last,
            (SELECT min(number) FROM subscription_events WHERE fv = $1 AND subscription = $2) AS first`,
    [fv, subscription],
  );
  const r = rows[0]!;
  return { last: r.last === null ? 0 : Number(r.last), first: r.first === null ? undefined : Number(r.first) };
}

export async function deliveryState(q: Query, fv: FhirVersion, subscription: string): Promise<DeliveryState> {
  const rows = await q('SELECT delivered_through, attempts, failing_since, last_error, delivered_at, next_attempt_at FROM subscription_delivery WHERE fv = $1 AND subscription = $2', [
    fv,
    subscription,
  ]);
  const r = rows[0];
  if (!r) return { deliveredThrough: 0, attempts: 0 };
  return {
    deliveredThrough: Number(r.delivered_through),
    attempts: r.attempts as number,
    ...(r.failing_since ? { failingSince: r.failing_since as string } : {}),
    ...(r.last_error ? { lastError: r.last_error as string } : {}),
    ...(r.delivered_at ? { deliveredAt: r.delivered_at as string } : {}),
    ...(r.next_attempt_at ? { nextAttemptAt: r.next_attempt_at as string } : {}),
  };
}

export async function bindingToken(q: Query, hash: string): Promise<BindingToken | undefined> {
  const rows = await q(
    `SELECT t.hash, t.fv, t.owner, t.expires_at, t.revoked,
       ARRAY(SELECT s.subscription FROM ws_token_subscriptions s WHERE s.hash = t.hash ORDER BY s.subscription) AS subs
     FROM ws_tokens t WHERE t.hash = $1`,
    [hash],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    hash: r.hash as string,
    fv: r.fv as FhirVersion,
    owner: r.owner as string,
    subscriptions: r.subs as string[],
    expiresAt: r.expires_at as string,
    revoked: r.revoked === 1,
  };
}

export async function subscriptionOwners(q: Query, fv: FhirVersion, subscription?: string): Promise<SubscriptionOwner[]> {
  const rows =
    subscription === undefined
      ? await q('SELECT subscription, owner, scope, patient FROM subscription_owners WHERE fv = $1 ORDER BY subscription', [fv])
      : await q('SELECT subscription, owner, scope, patient FROM subscription_owners WHERE fv = $1 AND subscription = $2', [fv, subscription]);
  return rows.map((r) => ({
    subscription: r.subscription as string,
    owner: r.owner as string,
    scope: r.scope as string,
    ...(r.patient !== null ? { patient: r.patient as string } : {}),
  }));
}

export async function history(q: Query, fv: FhirVersion, query: HistoryQuery): Promise<HistoryPage> {
  const conds = ['fv = $1'];
  const args: unknown[] = [fv];
  const add = (sql: string, value: unknown) => {
    args.push(value);
    conds.push(`${sql} $${args.length}`);
  };
  if (query.type !== undefined) add('type =', query.type);
  if (query.id !== undefined) add('id =', query.id);
  if (query.since !== undefined) add('last_updated >=', query.since);
  const where = conds.join(' AND ');
  const total = Number((await q(`SELECT count(*) AS n FROM resource_versions WHERE ${where}`, args))[0]!.n);
  const pageArgs = [...args];
  let pageWhere = where;
  if (query.before !== undefined) {
    pageArgs.push(query.before);
    pageWhere += ` AND seq < $${pageArgs.length}`;
  }
  pageArgs.push(query.count + 1);
  const rows = await q(
    `SELECT ${HISTORY_COLUMNS} FROM resource_versions v WHERE ${pageWhere} ORDER BY seq DESC LIMIT $${pageArgs.length}`,
    pageArgs,
  );
  const more = rows.length > query.count;
  const page = more ? rows.slice(0, query.count) : rows;
  return {
    versions: page.map((r) => toHistoryVersion(r as unknown as VersionRow & { after_deletion: unknown })),
    total,
    ...(more ? { next: Number(page[page.length - 1]!.seq) } : {}),
  };
}
