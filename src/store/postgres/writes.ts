import type { FhirVersion } from '../../fhir/types.ts';
import type { DateRow, IndexRows } from '../../search/types.ts';
import { rowBounds } from '../date-bounds.ts';
import { INDEX_TABLE, OWN_COLUMNS } from '../search-sql.ts';
import type { BindingToken, DeliveryClaim, DeliveryState, IndexReplacement, IndexState, NewEvent, NewVersion, SubscriptionOwner } from '../store.ts';
import type { Query } from './reads.ts';

/** Columns of each index table after (fv, type, id, code, n, grp), their array types and row fields. */
const KINDS: Record<keyof IndexRows, { cols: string[]; types: string[]; fields: string[] }> = {
  string: { cols: ['norm', 'exact'], types: ['text', 'text'], fields: ['norm', 'exact'] },
  token: { cols: ['system', 'value', 'text'], types: ['text', 'text', 'text'], fields: ['system', 'value', 'text'] },
  reference: {
    cols: ['target_type', 'target_id', 'url', 'version', 'ident_system', 'ident_value'],
    types: ['text', 'text', 'text', 'text', 'text', 'text'],
    fields: ['targetType', 'targetId', 'url', 'version', 'identifierSystem', 'identifierValue'],
  },
  date: { cols: ['lo', 'hi'], types: ['float8', 'float8'], fields: ['lo', 'hi'] },
  number: { cols: ['value'], types: ['float8'], fields: ['value'] },
  quantity: { cols: ['value', 'system', 'unit_code', 'unit'], types: ['float8', 'text', 'text', 'text'], fields: ['value', 'system', 'unitCode', 'unit'] },
  uri: { cols: ['value'], types: ['text'], fields: ['value'] },
};

/** The advisory lock key of a resource (taken by reads inside a transaction: see index.ts). */
export const resourceKey = (fv: string, type: string, id: string) => `r|${fv}|${type}|${id}`;
/** The advisory lock key of a resource type: shared by writes, exclusive for conditional criteria. */
export const typeKey = (fv: string, type: string) => `t|${fv}|${type}`;

/**
 * Writes one version: the version row, the `resources` row and the index rows in one statement
 * (after a second that deletes the previous version's index rows, for an update). The statement
 * also takes the type's advisory lock in shared mode (see index.ts on conditional criteria).
 */
export async function writeVersion(q: Query, fv: FhirVersion, v: NewVersion): Promise<void> {
  if (v.versionId !== 1) await deleteIndex(q, fv, v.type, v.id);
  const args: unknown[] = [fv, v.type, v.id, v.versionId, v.lastUpdated, v.method, v.json ?? null, typeKey(fv, v.type), v.json === undefined ? 1 : 0];
  const ctes = [
    'l AS (SELECT pg_advisory_xact_lock_shared(hashtextextended($8, 0)))',
    `v AS (INSERT INTO resource_versions (fv, type, id, vid, last_updated, method, body)
      SELECT $1, $2, $3, $4::integer, $5, $6, $7::text FROM l RETURNING seq)`,
  ];
  if (v.json !== undefined && v.index) ctes.push(...indexInserts([{ type: v.type, id: v.id, index: v.index }], args, true));
  await q(
    `WITH ${ctes.join(',\n')}
    INSERT INTO resources (fv, type, id, vid, seq, last_updated, deleted) SELECT $1, $2, $3, $4::integer, v.seq, $5, $9::smallint FROM v
    ON CONFLICT (fv, type, id) DO UPDATE SET vid = excluded.vid, seq = excluded.seq, last_updated = excluded.last_updated, deleted = excluded.deleted`,
    args,
    // One shape per combination of index row kinds: a handful per resource type.
    true,
  );
}

/**
 * Transaction.replaceIndex: the caller holds each resource's advisory lock (as every writer of it
 * does before it reads), so a version found current here stays current until the commit. Four
 * statements for the whole page, whatever its size.
 */
export async function replaceIndex(q: Query, fv: FhirVersion, entries: IndexReplacement[]): Promise<void> {
  if (entries.length === 0) return;
  const current = await q(
    `SELECT r.type, r.id FROM resources r JOIN unnest($2::text[], $3::text[], $4::integer[]) AS u(type, id, vid)
     ON r.fv = $1 AND r.type = u.type AND r.id = u.id AND r.vid = u.vid WHERE r.deleted = 0`,
    [fv, entries.map((e) => e.type), entries.map((e) => e.id), entries.map((e) => e.versionId)],
  );
  const live = new Set(current.map((r) => `${r.type as string}/${r.id as string}`));
  const owners = entries.filter((e) => live.has(`${e.type}/${e.id}`));
  if (owners.length === 0) return;
  const deletes = Object.values(INDEX_TABLE).map((t, i) => `d${i} AS (DELETE FROM ${t} x USING unnest($2::text[], $3::text[]) AS u(type, id) WHERE x.fv = $1 AND x.type = u.type AND x.id = u.id)`);
  await q(`WITH ${deletes.join(', ')} SELECT 1`, [fv, owners.map((e) => e.type), owners.map((e) => e.id)]);
  const args: unknown[] = [fv];
  const ctes = indexInserts(owners, args, false);
  if (ctes.length > 0) await q(`WITH ${ctes.join(',\n')} SELECT 1`, args);
}

export async function setIndexState(q: Query, fv: FhirVersion, state: IndexState): Promise<void> {
  await q('INSERT INTO index_state (fv, state) VALUES ($1, $2) ON CONFLICT (fv) DO UPDATE SET state = excluded.state', [fv, JSON.stringify(state)]);
}

/** Deletes a resource's index rows, every table in one statement. */
async function deleteIndex(q: Query, fv: FhirVersion, type: string, id: string): Promise<void> {
  const deletes = Object.values(INDEX_TABLE).map((t, i) => `d${i} AS (DELETE FROM ${t} WHERE fv = $1 AND type = $2 AND id = $3)`);
  await q(`WITH ${deletes.join(', ')} SELECT 1`, [fv, type, id], true);
}

/**
 * The CTEs that insert index rows (and widen the date bounds), for a statement whose $1 is fv:
 * with one owner (a write), whose $2 and $3 are its type and id; with several (a rebuild's page),
 * each row carries its owner's. Their arrays are appended to `args`.
 */
function indexInserts(owners: { type: string; id: string; index: IndexRows }[], args: unknown[], one: boolean): string[] {
  const ctes: string[] = [];
  for (const kind of Object.keys(KINDS) as (keyof IndexRows)[]) {
    const rows: { owner: { type: string; id: string }; n: number; row: Record<string, unknown> }[] = [];
    for (const owner of owners) {
      const own = (owner.index[kind] as unknown as Record<string, unknown>[]).filter((r) => !OWN_COLUMNS.has(r.code as string));
      own.forEach((row, n) => rows.push({ owner, n, row }));
    }
    if (rows.length === 0) continue;
    const k = KINDS[kind];
    const ownerArrays = one ? [] : [rows.map((r) => r.owner.type), rows.map((r) => r.owner.id)];
    const arrays = [...ownerArrays, rows.map((r) => r.row.code), rows.map((r) => r.n), rows.map((r) => r.row.grp ?? 0), ...k.fields.map((f) => rows.map((r) => r.row[f] ?? null))];
    const types = [...(one ? [] : ['text', 'text']), 'text', 'integer', 'integer', ...k.types];
    const params = arrays.map((a, i) => {
      args.push(a);
      return `$${args.length}::${types[i]}[]`;
    });
    ctes.push(`i_${kind} AS (INSERT INTO ${INDEX_TABLE[kind]} (fv, type, id, code, n, grp, ${k.cols.join(', ')})
      SELECT $1, ${one ? '$2, $3, ' : ''}u.* FROM unnest(${params.join(', ')}) AS u)`);
    if (kind === 'date') {
      const bounds = new Map<string, { type: string; code: string; span: number; multi: number }>();
      for (const owner of owners) {
        const own = (owner.index.date as unknown as DateRow[]).filter((r) => !OWN_COLUMNS.has(r.code));
        for (const b of rowBounds(own)) {
          const key = `${owner.type}|${b.code}`;
          const had = bounds.get(key);
          bounds.set(key, had ? { ...had, span: Math.max(had.span, b.span), multi: Math.max(had.multi, b.multi) } : { type: owner.type, ...b });
        }
      }
      ctes.push(widenBounds([...bounds.values()], args, one));
    }
  }
  return ctes;
}

/**
 * Widens the types' date bounds (date-bounds.ts) where these values reach further (one row per
 * type and code). The bounds are read first, without a lock: only a version that widens them
 * (rare after the first few of a type) takes the row's lock, so writers of one type do not queue
 * on it. `one`: the statement's $2 is the type (a write).
 */
function widenBounds(bounds: { type: string; code: string; span: number; multi: number }[], args: unknown[], one: boolean): string {
  if (!one) args.push(bounds.map((b) => b.type));
  const t = one ? '$2' : 'u.type';
  const typeArray = one ? '' : `$${args.length}::text[], `;
  args.push(bounds.map((b) => b.code), bounds.map((b) => b.span), bounds.map((b) => b.multi));
  const [c, s, m] = [args.length - 2, args.length - 1, args.length];
  return `b AS (INSERT INTO date_bounds (fv, type, code, span, multi)
    SELECT $1, ${t}, u.code, u.span, u.multi FROM unnest(${typeArray}$${c}::text[], $${s}::float8[], $${m}::smallint[]) AS u(${one ? '' : 'type, '}code, span, multi)
    WHERE NOT EXISTS (SELECT 1 FROM date_bounds x WHERE x.fv = $1 AND x.type = ${t} AND x.code = u.code AND x.span >= u.span AND x.multi >= u.multi)
    ON CONFLICT (fv, type, code) DO UPDATE SET span = greatest(date_bounds.span, excluded.span), multi = greatest(date_bounds.multi, excluded.multi))`;
}

/**
 * Appends events: each distinct change once (`changes`), and per subscription its next numbers
 * pointing at it. The counters are bumped in subscription order, so two transactions touching the
 * same subscriptions lock their counter rows in the same order; a transaction holds them until it
 * commits, which makes each subscription's numbers follow commit order, gap-free across nodes.
 */
export async function appendEvents(q: Query, fv: FhirVersion, events: NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  const changes = new Map<string, number>();
  const changeOf = (e: NewEvent) => {
    const key = JSON.stringify([e.timestamp, e.focus.type, e.focus.id, e.focus.versionId, e.interaction]);
    let i = changes.get(key);
    if (i === undefined) changes.set(key, (i = changes.size + 1));
    return i;
  };
  const bySub = new Map<string, number[]>();
  for (const e of events) {
    const list = bySub.get(e.subscription);
    if (list) list.push(changeOf(e));
    else bySub.set(e.subscription, [changeOf(e)]);
  }
  const subs = [...bySub.keys()].sort();
  const ev = { sub: [] as string[], pos: [] as number[], total: [] as number[], change: [] as number[] };
  for (const s of subs) {
    const list = bySub.get(s)!;
    list.forEach((c, i) => {
      ev.sub.push(s);
      ev.pos.push(i + 1);
      ev.total.push(list.length);
      ev.change.push(c);
    });
  }
  const rows = [...changes.keys()].map((k) => JSON.parse(k) as [string, string, string, number, string]);
  await q(
    `WITH u AS (
       SELECT nextval(pg_get_serial_sequence('changes', 'id')) AS id, u.*
       FROM unnest($2::text[], $3::text[], $4::text[], $5::integer[], $6::text[]) WITH ORDINALITY AS u(ts, ft, fi, fvid, it, i)
     ),
     ch AS (INSERT INTO changes (id, fv, ts, focus_type, focus_id, focus_vid, interaction) SELECT id, $1, ts, ft, fi, fvid, it FROM u),
     cnt AS (
       INSERT INTO subscription_counters (fv, subscription, last_number)
       SELECT $1, s, k FROM unnest($7::text[], $8::bigint[]) AS c(s, k)
       ON CONFLICT (fv, subscription) DO UPDATE SET last_number = subscription_counters.last_number + excluded.last_number
       RETURNING subscription, last_number
     )
     INSERT INTO subscription_events (fv, subscription, number, change)
     SELECT $1, e.s, cnt.last_number - e.total + e.pos, u.id
     FROM unnest($9::text[], $10::bigint[], $11::bigint[], $12::bigint[]) AS e(s, pos, total, ci)
     JOIN cnt ON cnt.subscription = e.s JOIN u ON u.i = e.ci`,
    [
      fv,
      rows.map((r) => r[0]),
      rows.map((r) => r[1]),
      rows.map((r) => r[2]),
      rows.map((r) => r[3]),
      rows.map((r) => r[4]),
      subs,
      subs.map((s) => bySub.get(s)!.length),
      ev.sub,
      ev.pos,
      ev.total,
      ev.change,
    ],
    true,
  );
}

export async function setDeliveryState(q: Query, fv: FhirVersion, subscription: string, s: DeliveryState): Promise<void> {
  await q(
    `INSERT INTO subscription_delivery (fv, subscription, delivered_through, attempts, failing_since, last_error, delivered_at, next_attempt_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (fv, subscription) DO UPDATE SET delivered_through = excluded.delivered_through, attempts = excluded.attempts,
       failing_since = excluded.failing_since, last_error = excluded.last_error, delivered_at = excluded.delivered_at,
       next_attempt_at = excluded.next_attempt_at`,
    [fv, subscription, s.deliveredThrough, s.attempts, s.failingSince ?? null, s.lastError ?? null, s.deliveredAt ?? null, s.nextAttemptAt ?? null],
  );
}

export async function putBindingToken(q: Query, t: BindingToken): Promise<void> {
  await q(
    `WITH t AS (INSERT INTO ws_tokens (hash, fv, owner, expires_at, revoked) VALUES ($1, $2, $3, $4, $5::smallint))
     INSERT INTO ws_token_subscriptions (hash, fv, subscription) SELECT $1, $2, s FROM unnest($6::text[]) AS s`,
    [t.hash, t.fv, t.owner, t.expiresAt, t.revoked ? 1 : 0, t.subscriptions],
  );
}

export async function revokeBindingToken(q: Query, hash: string): Promise<void> {
  await q('UPDATE ws_tokens SET revoked = 1 WHERE hash = $1', [hash]);
}

export async function revokeBindingTokens(q: Query, fv: FhirVersion, subscription: string): Promise<string[]> {
  const rows = await q(
    `UPDATE ws_tokens SET revoked = 1 WHERE hash IN (SELECT hash FROM ws_token_subscriptions WHERE fv = $1 AND subscription = $2) RETURNING hash`,
    [fv, subscription],
  );
  return rows.map((r) => r.hash as string);
}

export async function putSubscriptionOwner(q: Query, fv: FhirVersion, o: SubscriptionOwner): Promise<void> {
  await q(
    `INSERT INTO subscription_owners (fv, subscription, owner, scope, patient) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (fv, subscription) DO UPDATE SET owner = excluded.owner, scope = excluded.scope, patient = excluded.patient`,
    [fv, o.subscription, o.owner, o.scope, o.patient ?? null],
  );
}

/** Drops events older than `before` (and their changes), and expired tokens; returns how many events. */
export async function prune(q: Query, before: string, now: string, keepPerSubscription?: number): Promise<number> {
  await q('DELETE FROM ws_tokens WHERE expires_at < $1', [now]);
  await q('DELETE FROM ws_token_subscriptions s WHERE NOT EXISTS (SELECT 1 FROM ws_tokens t WHERE t.hash = s.hash)');
  const rows = await q(
    `WITH old AS (SELECT id FROM changes WHERE ts < $1),
     e AS (DELETE FROM subscription_events WHERE change IN (SELECT id FROM old) RETURNING 1),
     c AS (DELETE FROM changes WHERE id IN (SELECT id FROM old))
     SELECT count(*) AS n FROM e`,
    [before],
  );
  let n = Number(rows[0]!.n);
  if (keepPerSubscription === undefined) return n;
  // By size: numbers have no gaps, so "beyond the newest `keep`" is "numbered at most last - keep",
  // a key range per subscription over the limit (found from the counters, not by a scan).
  const trimmed = await q(
    `DELETE FROM subscription_events e USING subscription_counters c
     WHERE c.last_number > $1 AND e.fv = c.fv AND e.subscription = c.subscription AND e.number <= c.last_number - $1
     RETURNING e.change`,
    [keepPerSubscription],
  );
  n += trimmed.length;
  const changes = [...new Set(trimmed.map((r) => String(r.change)))];
  for (let i = 0; i < changes.length; i += 10_000) {
    // A change stays while another subscription's log still names it.
    await q('DELETE FROM changes ch WHERE ch.id = ANY($1::bigint[]) AND NOT EXISTS (SELECT 1 FROM subscription_events e WHERE e.change = ch.id)', [changes.slice(i, i + 10_000)]);
  }
  return n;
}

/**
 * Claims or renews `holder`'s delivery lease on a subscription (the database's clock decides
 * expiry, so nodes' clocks need not agree). Two nodes claiming at once: the upsert locks the row
 * and re-checks the condition on the latest version, so exactly one wins.
 */
export async function claimDelivery(q: Query, fv: FhirVersion, subscription: string, holder: string, leaseMs: number): Promise<DeliveryClaim> {
  const rows = await q(
    `WITH old AS (SELECT holder = $3 AND expires_at >= now() AS mine, expires_at FROM delivery_leases WHERE fv = $1 AND subscription = $2),
     up AS (
       INSERT INTO delivery_leases (fv, subscription, holder, expires_at) VALUES ($1, $2, $3, now() + $4::integer * interval '1 millisecond')
       ON CONFLICT (fv, subscription) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE delivery_leases.holder = excluded.holder OR delivery_leases.expires_at < now()
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM up) AS ok, coalesce((SELECT mine FROM old), false) AS renewed,
       greatest(0, extract(epoch FROM (SELECT expires_at FROM old) - now()) * 1000)::integer AS left_ms`,
    [fv, subscription, holder, leaseMs],
  );
  const r = rows[0]!;
  if (Number(r.ok) === 0) return { outcome: 'refused', expiresInMs: Number(r.left_ms ?? 0) };
  return { outcome: r.renewed ? 'renewed' : 'acquired', expiresInMs: leaseMs };
}

/** Of these subscriptions, those whose lease another holder has unexpired, with the ms left. */
export async function deliveryLeasesHeld(q: Query, fv: FhirVersion, subscriptions: string[], holder: string): Promise<Map<string, number>> {
  if (subscriptions.length === 0) return new Map();
  const rows = await q(
    `SELECT subscription, greatest(0, extract(epoch FROM expires_at - now()) * 1000)::integer AS left_ms FROM delivery_leases
     WHERE fv = $1 AND subscription = ANY($2::text[]) AND holder <> $3 AND expires_at > now()`,
    [fv, subscriptions, holder],
    true,
  );
  return new Map(rows.map((r) => [r.subscription as string, Number(r.left_ms)]));
}

/** Renews `holder`'s leases that nobody else has taken (expired or not); returns their subscriptions. */
export async function renewDeliveries(q: Query, fv: FhirVersion, subscriptions: string[], holder: string, leaseMs: number): Promise<string[]> {
  if (subscriptions.length === 0) return [];
  const rows = await q(
    `UPDATE delivery_leases SET expires_at = now() + $4::integer * interval '1 millisecond'
     WHERE fv = $1 AND subscription = ANY($2::text[]) AND holder = $3 RETURNING subscription`,
    [fv, subscriptions, holder, leaseMs],
  );
  return rows.map((r) => r.subscription as string);
}

/** Drops `holder`'s leases on these subscriptions; returns those it held. */
export async function releaseDeliveries(q: Query, fv: FhirVersion, subscriptions: string[], holder: string): Promise<string[]> {
  const rows = await q('DELETE FROM delivery_leases WHERE fv = $1 AND subscription = ANY($2::text[]) AND holder = $3 RETURNING subscription', [fv, subscriptions, holder]);
  return rows.map((r) => r.subscription as string);
}

/**
 * setDeliveryState fenced by the lease: written only while the lease row names `holder`. The row
 * is read FOR SHARE, so a claim by another node that is changing it is waited for and then seen:
 * once a takeover has committed, the old holder's writes are refused, and the new holder's read
 * of the cursor, made after its claim, sees every write the old holder made before it.
 */
export async function setLeasedDeliveryState(q: Query, fv: FhirVersion, subscription: string, holder: string, s: DeliveryState): Promise<boolean> {
  const rows = await q(
    `WITH lease AS (SELECT 1 FROM delivery_leases WHERE fv = $1 AND subscription = $2 AND holder = $9 FOR SHARE)
     INSERT INTO subscription_delivery (fv, subscription, delivered_through, attempts, failing_since, last_error, delivered_at, next_attempt_at)
     SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM lease
     ON CONFLICT (fv, subscription) DO UPDATE SET delivered_through = excluded.delivered_through, attempts = excluded.attempts,
       failing_since = excluded.failing_since, last_error = excluded.last_error, delivered_at = excluded.delivered_at,
       next_attempt_at = excluded.next_attempt_at
     RETURNING 1`,
    [fv, subscription, s.deliveredThrough, s.attempts, s.failingSince ?? null, s.lastError ?? null, s.deliveredAt ?? null, s.nextAttemptAt ?? null, holder],
  );
  return rows.length > 0;
}

/**
 * The value stored under `name`, storing `candidate` first if there is none. Two nodes racing:
 * the second INSERT waits for the first to commit and then does nothing; the SELECT, a statement
 * of its own, sees the committed row either way.
 */
export async function sharedSecret(q: Query, name: string, candidate: string, at: string): Promise<string> {
  await q('INSERT INTO shared_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING', [name, candidate, at]);
  const rows = await q('SELECT value FROM shared_secrets WHERE name = $1', [name]);
  return rows[0]!.value as string;
}
