import type Database from 'better-sqlite3';
import type { DateRow, IndexRows } from '../../search/types.ts';
import { rowBounds } from '../date-bounds.ts';
import { INDEX_TABLE, OWN_COLUMNS } from '../search-sql.ts';

/** Columns of each index table after (fv, type, id, code, grp), in the order rows supply them. */
const TABLES = {
  string: { cols: ['norm', 'exact'] },
  token: { cols: ['system', 'value', 'text'] },
  reference: {
    cols: ['target_type', 'target_id', 'url', 'version', 'ident_system', 'ident_value'],
    fields: ['targetType', 'targetId', 'url', 'version', 'identifierSystem', 'identifierValue'],
  },
  date: { cols: ['lo', 'hi'] },
  number: { cols: ['value'] },
  quantity: { cols: ['value', 'system', 'unit_code', 'unit'], fields: ['value', 'system', 'unitCode', 'unit'] },
  uri: { cols: ['value'] },
} as const satisfies Record<keyof IndexRows, { cols: readonly string[]; fields?: readonly string[] }>;

/**
 * Writes the index rows of a resource's current version, replacing those of its previous
 * version. Statements are prepared once.
 */
export function createIndexWriter(db: Database.Database) {
  const kinds = Object.keys(TABLES) as (keyof IndexRows)[];
  const deletes = Object.values(INDEX_TABLE).map((table) => db.prepare(`DELETE FROM ${table} WHERE fv = ? AND type = ? AND id = ?`));
  // One multi-row INSERT per table and resource: far fewer calls into SQLite than a row at a time.
  // OR FAIL: with the default (ABORT), a statement writing several rows keeps a statement journal,
  // a copy of each page it changes, so that a failure halfway undoes its own rows alone. These
  // statements never run alone: a failure fails the move or the job around them, whose transaction
  // or savepoint is rolled back whole (deferred-index.ts, writer.ts), so that copy is wasted work.
  // Moving entries in batches of eight took 5-10% less CPU without it (docs/benchmark-log.md).
  const statements = new Map<string, Database.Statement>();
  const insertFor = (kind: keyof IndexRows, n: number): Database.Statement => {
    const key = `${kind}:${n}`;
    let stmt = statements.get(key);
    if (!stmt) {
      const t = TABLES[kind];
      const tuple = `(${Array(6 + t.cols.length).fill('?').join(', ')})`;
      stmt = db.prepare(`INSERT OR FAIL INTO ${INDEX_TABLE[kind]} (fv, type, id, code, n, grp, ${t.cols.join(', ')}) VALUES ${Array(n).fill(tuple).join(', ')}`);
      statements.set(key, stmt);
    }
    return stmt;
  };

  // A date parameter's bounds (date-bounds.ts) only grow: nothing is written unless this version's reach further.
  const widen = db.prepare(
    `INSERT INTO date_bounds (fv, type, code, span, multi) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (fv, type, code) DO UPDATE SET span = max(span, excluded.span), multi = max(multi, excluded.multi)
     WHERE excluded.span > span OR excluded.multi > multi`,
  );

  return {
    /** `fresh`: the resource has no earlier version, so there is nothing to delete. */
    replace(fv: string, type: string, id: string, rows: IndexRows | undefined, fresh: boolean): void {
      if (!fresh) for (const d of deletes) d.run(fv, type, id);
      if (!rows) return;
      for (const kind of kinds) {
        const list = (rows[kind] as unknown as Record<string, unknown>[]).filter((r) => !OWN_COLUMNS.has(r.code as string));
        if (list.length === 0) continue;
        const t = TABLES[kind];
        const fields: readonly string[] = 'fields' in t ? t.fields : t.cols;
        for (let at = 0; at < list.length; at += MAX_ROWS) {
          const chunk = list.slice(at, at + MAX_ROWS);
          const args: unknown[] = [];
          for (const [i, row] of chunk.entries()) {
            args.push(fv, type, id, row.code, at + i, row.grp ?? 0);
            for (const f of fields) args.push(row[f] ?? null);
          }
          insertFor(kind, chunk.length).run(args);
        }
        if (kind === 'date') for (const b of rowBounds(list as unknown as DateRow[])) widen.run(fv, type, b.code, b.span, b.multi);
      }
    },
  };
}

/** Rows per INSERT statement (SQLite allows 32766 parameters; statements are cached per size). */
const MAX_ROWS = 64;
