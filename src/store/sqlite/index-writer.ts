import type Database from 'better-sqlite3';
import type { IndexRows } from '../../search/types.ts';

/** Columns of each index table after (fv, type, id, code, grp), in the order rows supply them. */
const TABLES = {
  string: { table: 'sp_string', cols: ['norm', 'exact'] },
  token: { table: 'sp_token', cols: ['system', 'value', 'text'] },
  reference: {
    table: 'sp_reference',
    cols: ['target_type', 'target_id', 'url', 'version', 'ident_system', 'ident_value'],
    fields: ['targetType', 'targetId', 'url', 'version', 'identifierSystem', 'identifierValue'],
  },
  date: { table: 'sp_date', cols: ['lo', 'hi'] },
  number: { table: 'sp_number', cols: ['value'] },
  quantity: { table: 'sp_quantity', cols: ['value', 'system', 'unit_code', 'unit'], fields: ['value', 'system', 'unitCode', 'unit'] },
  uri: { table: 'sp_uri', cols: ['value'] },
} as const satisfies Record<keyof IndexRows, { table: string; cols: readonly string[]; fields?: readonly string[] }>;

export const INDEX_TABLES: readonly string[] = Object.values(TABLES).map((t) => t.table);

/**
 * Writes the index rows of a resource's current version, replacing those of its previous
 * version. Statements are prepared once.
 */
export function createIndexWriter(db: Database.Database) {
  const kinds = Object.keys(TABLES) as (keyof IndexRows)[];
  const inserts = kinds.map((kind) => {
    const t = TABLES[kind];
    const fields: readonly string[] = 'fields' in t ? t.fields : t.cols;
    const sql = `INSERT INTO ${t.table} (fv, type, id, code, grp, ${t.cols.join(', ')}) VALUES (${Array(5 + t.cols.length).fill('?').join(', ')})`;
    return { kind, fields, stmt: db.prepare(sql) };
  });
  const deletes = INDEX_TABLES.map((table) => db.prepare(`DELETE FROM ${table} WHERE fv = ? AND type = ? AND id = ?`));

  return {
    /** `fresh`: the resource has no earlier version, so there is nothing to delete. */
    replace(fv: string, type: string, id: string, rows: IndexRows | undefined, fresh: boolean): void {
      if (!fresh) for (const d of deletes) d.run(fv, type, id);
      if (!rows) return;
      for (const { kind, fields, stmt } of inserts) {
        for (const row of rows[kind] as unknown as Record<string, unknown>[]) {
          const values = fields.map((f) => toSql(row[f]));
          stmt.run(fv, type, id, row.code, row.grp ?? 0, ...values);
        }
      }
    },
  };
}

/** SQLite has no booleans or undefined; ±Infinity is stored as REAL and compares as expected. */
function toSql(v: unknown): unknown {
  return v === undefined ? null : v;
}
