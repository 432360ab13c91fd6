import type pg from 'pg';

/**
 * The PostgreSQL schema: the same tables as SQLite's (sqlite/migrations.ts), except that an event
 * is stored once as a change (what happened to which version, when) and each subscription's log
 * holds only (number, change) pairs. Every text column compares by code point (COLLATE "C"), as
 * SQLite's BINARY does: prefix ranges ("abc" ≤ x < "abc\u{10FFFF}") and keyset paging depend on
 * it, whatever the database's own collation. Never edit a migration that has shipped: add one.
 */
const T = 'text COLLATE "C"';

/**
 * How many leading characters of a string, token or uri value its index holds (migration 4; the
 * dialect's keyChars). 256 characters are at most 1 kB in UTF-8, so a token row's two keys fit.
 */
export const KEY_CHARS = 256;

const indexTable = (name: string, cols: string) =>
  `CREATE TABLE ${name} (fv ${T} NOT NULL, type ${T} NOT NULL, id ${T} NOT NULL, code ${T} NOT NULL, n integer NOT NULL, grp integer NOT NULL,
    ${cols}, PRIMARY KEY (fv, type, id, code, n));`;

export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE resource_versions (
    seq bigserial PRIMARY KEY, fv ${T} NOT NULL, type ${T} NOT NULL, id ${T} NOT NULL, vid integer NOT NULL,
    last_updated ${T} NOT NULL, method ${T} NOT NULL, body text,
    UNIQUE (fv, type, id, vid)
  );
  CREATE INDEX resource_versions_type ON resource_versions (fv, type, seq);
  CREATE INDEX resource_versions_fv ON resource_versions (fv, seq);
  CREATE TABLE resources (
    fv ${T} NOT NULL, type ${T} NOT NULL, id ${T} NOT NULL, vid integer NOT NULL, seq bigint NOT NULL,
    last_updated ${T} NOT NULL, deleted smallint NOT NULL,
    PRIMARY KEY (fv, type, id)
  );
  ${indexTable('sp_string', `norm ${T} NOT NULL, exact ${T} NOT NULL`)}
  CREATE INDEX sp_string_v ON sp_string (fv, type, code, norm);
  ${indexTable('sp_token', `system ${T}, value ${T}, text ${T}`)}
  CREATE INDEX sp_token_v ON sp_token (fv, type, code, value, system);
  ${indexTable('sp_reference', `target_type ${T}, target_id ${T}, url ${T}, version ${T}, ident_system ${T}, ident_value ${T}`)}
  CREATE INDEX sp_reference_v ON sp_reference (fv, type, code, target_id, target_type);
  CREATE INDEX sp_reference_t ON sp_reference (fv, target_type, target_id);
  ${indexTable('sp_date', 'lo double precision NOT NULL, hi double precision NOT NULL')}
  CREATE INDEX sp_date_v ON sp_date (fv, type, code, lo, hi);
  ${indexTable('sp_number', 'value double precision NOT NULL')}
  CREATE INDEX sp_number_v ON sp_number (fv, type, code, value);
  ${indexTable('sp_quantity', `value double precision NOT NULL, system ${T}, unit_code ${T}, unit ${T}`)}
  CREATE INDEX sp_quantity_v ON sp_quantity (fv, type, code, value);
  ${indexTable('sp_uri', `value ${T} NOT NULL`)}
  CREATE INDEX sp_uri_v ON sp_uri (fv, type, code, value);

  CREATE TABLE changes (
    id bigserial PRIMARY KEY, fv ${T} NOT NULL, ts ${T} NOT NULL,
    focus_type ${T} NOT NULL, focus_id ${T} NOT NULL, focus_vid integer NOT NULL, interaction ${T} NOT NULL
  );
  CREATE INDEX changes_ts ON changes (ts);
  CREATE TABLE subscription_counters (
    fv ${T} NOT NULL, subscription ${T} NOT NULL, last_number bigint NOT NULL, PRIMARY KEY (fv, subscription)
  );
  CREATE TABLE subscription_events (
    fv ${T} NOT NULL, subscription ${T} NOT NULL, number bigint NOT NULL, change bigint NOT NULL,
    PRIMARY KEY (fv, subscription, number)
  );
  CREATE INDEX subscription_events_change ON subscription_events (change);
  CREATE TABLE subscription_delivery (
    fv ${T} NOT NULL, subscription ${T} NOT NULL, delivered_through bigint NOT NULL, attempts integer NOT NULL,
    failing_since ${T}, last_error text, PRIMARY KEY (fv, subscription)
  );

  CREATE TABLE ws_tokens (
    hash ${T} PRIMARY KEY, fv ${T} NOT NULL, owner ${T} NOT NULL, expires_at ${T} NOT NULL, revoked smallint NOT NULL DEFAULT 0
  );
  CREATE TABLE ws_token_subscriptions (
    hash ${T} NOT NULL, fv ${T} NOT NULL, subscription ${T} NOT NULL, PRIMARY KEY (fv, subscription, hash)
  );
  CREATE INDEX ws_token_subscriptions_hash ON ws_token_subscriptions (hash);
  CREATE TABLE subscription_owners (
    fv ${T} NOT NULL, subscription ${T} NOT NULL, owner ${T} NOT NULL, scope text NOT NULL, patient ${T},
    PRIMARY KEY (fv, subscription)
  );
  `,
  // 2: rest-hook delivery leases: one node at a time delivers a subscription's events.
  `
  CREATE TABLE delivery_leases (
    fv ${T} NOT NULL, subscription ${T} NOT NULL, holder ${T} NOT NULL, expires_at timestamptz NOT NULL,
    PRIMARY KEY (fv, subscription)
  );
  `,
  // 3: when the events through delivered_through were delivered, and when a failing rest-hook
  //    subscription's next attempt is due (both shown by $status).
  `
  ALTER TABLE subscription_delivery ADD COLUMN delivered_at ${T}, ADD COLUMN next_attempt_at ${T};
  `,
  // 4: a B-tree row holds at most about 2.7 kB, and a string, token or uri may be a million
  //    characters: the value indexes hold the first KEY_CHARS characters (search-sql.ts compares
  //    on that prefix, then on the whole value). Reference rows are unchanged: their ids are FHIR
  //    ids (at most 64 characters) and urls are not indexed.
  `
  DROP INDEX sp_string_v;
  CREATE INDEX sp_string_v ON sp_string (fv, type, code, substr(norm, 1, ${KEY_CHARS}));
  DROP INDEX sp_token_v;
  CREATE INDEX sp_token_v ON sp_token (fv, type, code, substr(value, 1, ${KEY_CHARS}), substr(system, 1, ${KEY_CHARS}));
  DROP INDEX sp_uri_v;
  CREATE INDEX sp_uri_v ON sp_uri (fv, type, code, substr(value, 1, ${KEY_CHARS}));
  `,
  // 5: secrets every node must share (the embedded auth issuer's signing key), written once:
  //    the primary key makes the first node's value the only one.
  `
  CREATE TABLE shared_secrets (name ${T} PRIMARY KEY, value text NOT NULL, created_at ${T} NOT NULL);
  `,
  // 6: how far each date parameter's values reach, per type (date-bounds.ts): its longest span
  //    (infinite once a value is open at either end) and whether a resource holds several. A date
  //    condition then bounds lo, so sp_date_v seeks a range instead of reading the parameter's rows.
  `
  CREATE TABLE date_bounds (fv ${T} NOT NULL, type ${T} NOT NULL, code ${T} NOT NULL, span double precision NOT NULL, multi smallint NOT NULL,
    PRIMARY KEY (fv, type, code));
  INSERT INTO date_bounds (fv, type, code, span, multi)
    SELECT fv, type, code, max(span), max(several) FROM (
      SELECT fv, type, code, max(CASE WHEN hi - lo = 'NaN' THEN 'Infinity' ELSE hi - lo END) AS span, (count(*) > 1)::int::smallint AS several FROM sp_date GROUP BY fv, type, id, code
    ) per_resource GROUP BY fv, type, code;
  `,
  // 7: a date value that ends before it starts (a Period with end < start) makes its
  //    parameter's span infinite (date-bounds.ts): the windows assume lo <= hi. Migration 6
  //    counted such a value as a negative span.
  `
  UPDATE date_bounds b SET span = 'Infinity'
    WHERE EXISTS (SELECT 1 FROM sp_date d WHERE d.fv = b.fv AND d.type = b.type AND d.code = b.code AND d.hi < d.lo);
  `,
  // 8: what each FHIR version's search index was built with, and how far a rebuild has come
  //    (store/reindex.ts): an IndexState as JSON. A database without a row is rebuilt once.
  `
  CREATE TABLE index_state (fv ${T} PRIMARY KEY, state text NOT NULL);
  `,
  // 9: canonical references (and absolute URLs outside the server) by URL, on its indexed prefix,
  //    for _revinclude, _has and chains through canonicals (search-sql.ts, namesUrl). Partial: a
  //    literal reference (the bulk of the rows, with a target type) costs a write nothing more.
  `
  CREATE INDEX sp_reference_url ON sp_reference (fv, type, code, substr(url, 1, ${KEY_CHARS})) WHERE target_type IS NULL AND url IS NOT NULL;
  `,
];

/** Key of the advisory lock held while the schema is created or migrated (any constant will do). */
const MIGRATION_LOCK = 0x4845_5241; // "HERA"

/**
 * Key of the advisory lock every running node holds in shared mode (presence.ts), and a node about
 * to migrate takes exclusively: no schema changes under a running node.
 */
export const RUNNING_LOCK = 0x4845_524e; // "HERN"

/** The schema version the database is at (0: none yet). */
export async function schemaVersion(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM herald_migrations');
  return rows[0]?.v ?? 0;
}

/**
 * Creates or migrates the schema on `client`'s session, and leaves that session holding
 * RUNNING_LOCK in shared mode (the caller keeps the connection for as long as its node runs).
 * Several nodes may start at the same moment: each takes the same advisory lock first, so one
 * migrates and the others then find nothing to do. A migration needs RUNNING_LOCK exclusively:
 * while any node holds it (a node of the schema before), this one refuses to start, saying how
 * many run. `migrations` is for tests (a later version's list).
 */
export async function migrate(client: pg.ClientBase, migrations: readonly string[] = MIGRATIONS): Promise<void> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS herald_migrations (version integer PRIMARY KEY, applied_at text NOT NULL)');
    const current = await schemaVersion(client);
    if (current > migrations.length) throw new Error(`database schema version ${current} is newer than this Herald (${migrations.length})`);
    if (current < migrations.length) {
      // Nodes may stop between the try and the count: then try again.
      for (let attempt = 1; ; attempt++) {
        const { rows } = await client.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1) AS got', [RUNNING_LOCK]);
        if (rows[0]!.got) break;
        const n = await runningNodes(client);
        if (n > 0 || attempt === 3) {
          throw new Error(
            `${n > 0 ? `${n} Herald node${n === 1 ? ' is' : 's are'}` : 'another session is'} running on this database at schema version ${current}, and this Herald needs version ${migrations.length}: stop every running node, then start this one (it migrates the schema), then the others on this version`,
          );
        }
      }
      try {
        await client.query('BEGIN');
        try {
          for (let v = current + 1; v <= migrations.length; v++) {
            await client.query(migrations[v - 1]!);
            await client.query('INSERT INTO herald_migrations (version, applied_at) VALUES ($1, $2)', [v, new Date().toISOString()]);
          }
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw err;
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [RUNNING_LOCK]);
      }
    }
    await client.query('SELECT pg_advisory_lock_shared($1)', [RUNNING_LOCK]);
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  }
}

/** Sessions holding RUNNING_LOCK in shared mode on this database: the nodes running on it. */
export async function runningNodes(client: pg.ClientBase): Promise<number> {
  // A bigint key is split into classid (high 32 bits) and objid (low 32 bits), objsubid 1.
  const { rows } = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_locks
     WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND classid = 0 AND objid = $1 AND objsubid = 1 AND mode = 'ShareLock' AND granted`,
    [RUNNING_LOCK],
  );
  return rows[0]!.n;
}
