import type Database from 'better-sqlite3';
import type { FhirVersion } from '../../fhir/types.ts';
import type { BindingToken, SubscriptionOwner } from '../store.ts';

/** Websocket binding tokens on SQLite (hash, owner, subscriptions, expiry, revocation). */
export function createTokenStore(db: Database.Database) {
  const insert = db.prepare('INSERT INTO ws_tokens (hash, fv, owner, expires_at, revoked) VALUES (?, ?, ?, ?, ?)');
  const insertSub = db.prepare('INSERT INTO ws_token_subscriptions (hash, fv, subscription) VALUES (?, ?, ?)');
  const get = db.prepare<[string], { hash: string; fv: string; owner: string; expires_at: string; revoked: number }>(
    'SELECT hash, fv, owner, expires_at, revoked FROM ws_tokens WHERE hash = ?',
  );
  const subs = db.prepare<[string], { subscription: string }>("SELECT subscription FROM ws_token_subscriptions WHERE hash = ? ORDER BY subscription");
  const covering = db.prepare<[string, string], { hash: string }>('SELECT hash FROM ws_token_subscriptions WHERE fv = ? AND subscription = ?');
  const revoke = db.prepare('UPDATE ws_tokens SET revoked = 1 WHERE hash = ?');
  const expired = db.prepare('DELETE FROM ws_tokens WHERE expires_at < ?');
  const orphans = db.prepare('DELETE FROM ws_token_subscriptions WHERE hash NOT IN (SELECT hash FROM ws_tokens)');
  return {
    put(t: BindingToken): void {
      insert.run(t.hash, t.fv, t.owner, t.expiresAt, t.revoked ? 1 : 0);
      for (const s of t.subscriptions) insertSub.run(t.hash, t.fv, s);
    },
    get(hash: string): BindingToken | undefined {
      const row = get.get(hash);
      if (!row) return undefined;
      return {
        hash: row.hash,
        fv: row.fv as FhirVersion,
        owner: row.owner,
        subscriptions: subs.all(hash).map((r) => r.subscription),
        expiresAt: row.expires_at,
        revoked: row.revoked === 1,
      };
    },
    revoke(hash: string): void {
      revoke.run(hash);
    },
    revokeFor(fv: string, subscription: string): string[] {
      const hashes = covering.all(fv, subscription).map((r) => r.hash);
      for (const h of hashes) revoke.run(h);
      return hashes;
    },
    prune(now: string): void {
      expired.run(now);
      orphans.run();
    },
  };
}

/** Subscription owners on SQLite (D-22). */
export function createOwnerStore(db: Database.Database) {
  const put = db.prepare(
    `INSERT INTO subscription_owners (fv, subscription, owner, scope, patient) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (fv, subscription) DO UPDATE SET owner = excluded.owner, scope = excluded.scope, patient = excluded.patient`,
  );
  const all = db.prepare<[string], { subscription: string; owner: string; scope: string; patient: string | null }>(
    'SELECT subscription, owner, scope, patient FROM subscription_owners WHERE fv = ? ORDER BY subscription',
  );
  const one = db.prepare<[string, string], { subscription: string; owner: string; scope: string; patient: string | null }>(
    'SELECT subscription, owner, scope, patient FROM subscription_owners WHERE fv = ? AND subscription = ?',
  );
  return {
    put(fv: string, o: SubscriptionOwner): void {
      put.run(fv, o.subscription, o.owner, o.scope, o.patient ?? null);
    },
    all(fv: string, subscription?: string): SubscriptionOwner[] {
      const rows = subscription === undefined ? all.all(fv) : one.all(fv, subscription);
      return rows.map(({ patient, ...r }) => ({ ...r, ...(patient !== null ? { patient } : {}) }));
    },
  };
}
