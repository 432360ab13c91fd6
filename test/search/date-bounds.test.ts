import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { loadDefinitions } from '../../src/fhir/definitions/index.ts';
import type { Resource } from '../../src/fhir/types.ts';
import { extractIndex } from '../../src/search/extract.ts';
import { compileMatcher } from '../../src/search/match.ts';
import { searchRegistry } from '../../src/search/parameters.ts';
import { parseSearch } from '../../src/search/parse.ts';
import { openPostgresStore } from '../../src/store/postgres/index.ts';
import { openSqliteStore } from '../../src/store/sqlite/index.ts';
import type { Store } from '../../src/store/store.ts';
import { dialect as pgDialect, numbered } from '../../src/store/postgres/reads.ts';
import { rowBounds } from '../../src/store/date-bounds.ts';
import { searchSteps } from '../../src/store/search-run.ts';
import type { Dialect } from '../../src/store/search-sql.ts';
import { dialect as sqliteDialect } from '../../src/store/sqlite/search.ts';
import { createDatabase, dropDatabase } from '../helpers/postgres.ts';

/**
 * Date searches narrowed by how far a parameter's values reach (src/store/date-bounds.ts): the
 * store's answers must stay exactly the in-memory matcher's, on real SQLite and real PostgreSQL,
 * for random data and random conditions (every prefix, ORed values, repeated parameters), while
 * the bounds are finite and single-valued (Observation.date: the one-row window), multi-valued
 * (Goal.target-date: each condition on its own) and after a value open at one end has made the
 * span infinite (no window). The bounds the stores keep are checked too: they only grow.
 */
const NOW = new Date('2021-07-01T00:00:00Z');
const dir = mkdtempSync(join(tmpdir(), 'herald-date-bounds-'));
after(() => rmSync(dir, { recursive: true, force: true }));

type Bounds = Record<string, { span: number; multi: number }>;
/** A connection of the test's own to a store's database, beside the store's. */
interface Connection {
  run(sql: string, args: unknown[]): Promise<Record<string, unknown>[]>;
  end(): Promise<void>;
}
interface Opened {
  store: Store;
  /** The store's spelling of the shared search SQL, to run a search's steps on `connect()`. */
  dialect: Dialect;
  connect(): Promise<Connection>;
  close(): Promise<void>;
}
/** Each store on a database of its own (`name`: the SQLite file). */
const STORES: [string, (name: string) => Promise<Opened>][] = [
  [
    'sqlite',
    async (name) => {
      const path = join(dir, `${name}.db`);
      const store = await openSqliteStore({ path, now: () => NOW });
      const connect = async () => {
        const db = new Database(path, { readonly: true });
        return { run: async (sql: string, args: unknown[]) => db.prepare(sql).all(...args) as Record<string, unknown>[], end: async () => void db.close() };
      };
      return { store, dialect: sqliteDialect, connect, close: () => store.close() };
    },
  ],
  [
    'postgres',
    async () => {
      const url = await createDatabase();
      const store = await openPostgresStore({ url, poolSize: 2, searchPoolSize: 1, now: () => NOW });
      const connect = async () => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        return { run: async (sql: string, args: unknown[]) => (await client.query(numbered(sql), args)).rows, end: () => client.end() };
      };
      return { store, dialect: pgDialect, connect, close: async () => (await store.close(), await dropDatabase(url)) };
    },
  ],
];

/**
 * The bounds the store keeps, read on a connection of the test's own. SQLite widens them as it
 * moves a write's index rows into the index, after the commit (deferred-index.ts): a search
 * first waits for every acknowledged write to be in.
 */
async function storedBounds(opened: Opened): Promise<Bounds> {
  await opened.store.search('R4', parseSearch(registry, ['Encounter'], new URLSearchParams(), { strict: true, defaultCount: 1, maxCount: 1 }));
  const c = await opened.connect();
  try {
    return toBounds(await c.run('SELECT type, code, span, multi FROM date_bounds', []));
  } finally {
    await c.end();
  }
}

const toBounds = (rows: Record<string, unknown>[]): Bounds =>
  Object.fromEntries(rows.map((r) => [`${r.type}|${r.code}`, { span: Number(r.span), multi: Number(r.multi) }]));

/** mulberry32: the same data and queries every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rnd = prng(20261207);
const pick = <T>(list: readonly T[]) => list[Math.floor(rnd() * list.length)]!;
const FROM = Date.UTC(2019, 0, 1);
const TO = Date.UTC(2022, 0, 1);
const instant = () => new Date(FROM + Math.floor(rnd() * (TO - FROM))).toISOString().replace(/\.\d+Z$/, 'Z');
/** A date or dateTime at a random precision (year … second). */
const written = () => {
  const t = instant();
  return pick([t.slice(0, 4), t.slice(0, 7), t.slice(0, 10), t.slice(0, 10), t, t]);
};

function observation(i: number): Resource {
  const base = { resourceType: 'Observation', id: `obs-${i}`, status: 'final', code: { text: 'x' } };
  if (rnd() < 0.7) return { ...base, effectiveDateTime: written() } as Resource;
  const [a, b] = [instant(), instant()].sort();
  return { ...base, effectivePeriod: { start: a, end: b } } as Resource;
}

function goal(i: number): Resource {
  const target = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => ({ dueDate: instant().slice(0, 10) }));
  return { resourceType: 'Goal', id: `goal-${i}`, lifecycleStatus: 'active', description: { text: 'x' }, subject: { reference: 'Patient/p' }, target } as Resource;
}

const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'] as const;
/** 1-3 conditions on `code`, each of 1-2 values (mostly one). */
function query(code: string): string {
  const conditions = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => {
    const values = Array.from({ length: rnd() < 0.8 ? 1 : 2 }, () => `${pick(PREFIXES)}${written()}`);
    return `${code}=${encodeURIComponent(values.join(','))}`;
  });
  // Now and then the window of the month (the commonest date search of all).
  if (rnd() < 0.25) {
    const t = instant();
    return `${code}=ge${t.slice(0, 7)}-01&${code}=lt${t.slice(0, 7)}-15`;
  }
  return conditions.join('&');
}

const registry = searchRegistry(loadDefinitions('R4'));
const OBSERVATIONS = Array.from({ length: 150 }, (_, i) => observation(i));
const GOALS = Array.from({ length: 60 }, (_, i) => goal(i));
const QUERIES: [string, string][] = [
  ...Array.from({ length: 120 }, () => ['Observation', query('date')] as [string, string]),
  ...Array.from({ length: 60 }, () => ['Goal', query('target-date')] as [string, string]),
];

for (const [storeName, open] of STORES) {
  describe(`date searches narrowed by the parameters' bounds (${storeName}): store = in-memory matcher`, () => {
    let opened: Opened;
    const resources: Resource[] = [];
    const write = (list: Resource[]) =>
      opened.store.transaction(async (tx) => {
        for (const r of list) {
          await tx.write('R4', { type: r.resourceType, id: r.id!, versionId: 1, lastUpdated: '2024-01-01T00:00:00.000Z', method: 'PUT', json: JSON.stringify(r), index: extractIndex(registry, r) });
          resources.push(r);
        }
      });
    const agree = async () => {
      for (const [type, q] of QUERIES) {
        const request = parseSearch(registry, [type], new URLSearchParams(q), { strict: true, defaultCount: 1000, maxCount: 1000 });
        const page = await opened.store.search('R4', request);
        const fromStore = page.matches.map((m) => m.id).sort();
        const matcher = compileMatcher(registry, type, q, { now: () => NOW.getTime() });
        const inMemory = resources.filter((r) => r.resourceType === type && matcher.matches(r)).map((r) => r.id!).sort();
        assert.deepEqual(fromStore, inMemory, `${type}?${q}`);
        assert.equal(page.total, inMemory.length, `${type}?${q}: total`);
      }
    };

    before(async () => {
      opened = await open('agreement');
      await write([...OBSERVATIONS, ...GOALS]);
    });
    after(() => opened.close());

    it('finite, single-valued (Observation.date) and multi-valued (Goal.target-date): the same answers as the matcher', async () => {
      await agree();
      const b = await storedBounds(opened);
      assert.equal(b['Observation|date']!.multi, 0, 'no Observation has two dates');
      assert.ok(Number.isFinite(b['Observation|date']!.span) && b['Observation|date']!.span > 0, 'a finite span');
      assert.equal(b['Goal|target-date']!.multi, 1, 'Goals have several target dates');
      assert.equal(b['Goal|target-date']!.span, 86_400_000 - 1, 'a day, as a date is indexed');
    });

    it('a value open at one end makes the span infinite: still the same answers', async () => {
      const before = (await storedBounds(opened))['Observation|date']!;
      await write([{ resourceType: 'Observation', id: 'open', status: 'final', code: { text: 'x' }, effectivePeriod: { start: '2020-06-01' } } as Resource]);
      await agree();
      const b = (await storedBounds(opened))['Observation|date']!;
      assert.equal(b.span, Infinity);
      assert.ok(b.span > before.span);
    });

    it('a Period that ends before it starts is the range between its ends (the windows assume lo <= hi): the same answers as the matcher', async () => {
      // Nothing rejects a Period whose end precedes its start (invariant per-1 is not enforced).
      const encounters = [
        { resourceType: 'Encounter', id: 'inverted', status: 'finished', class: { code: 'AMB' }, period: { start: '2024-06-01', end: '2023-12-01' } },
        { resourceType: 'Encounter', id: 'plain', status: 'finished', class: { code: 'AMB' }, period: { start: '2020-01-01', end: '2020-01-05' } },
      ] as Resource[];
      await write(encounters);
      assert.equal((await storedBounds(opened))['Encounter|date']!.span, Date.UTC(2024, 5, 2) - Date.UTC(2023, 11, 1) - 1, 'from the end to the start');
      for (const q of ['date=ge2024', 'date=ge2024&date=le2024', 'date=eb2024-01-01', 'date=le2023-12-31', 'date=gt2023-06-01', 'date=sa2019', 'date=ap2024-06-01']) {
        const request = parseSearch(registry, ['Encounter'], new URLSearchParams(q), { strict: true, defaultCount: 1000, maxCount: 1000 });
        const fromStore = (await opened.store.search('R4', request)).matches.map((m) => m.id).sort();
        const matcher = compileMatcher(registry, 'Encounter', q, { now: () => NOW.getTime() });
        assert.deepEqual(fromStore, encounters.filter((r) => matcher.matches(r)).map((r) => r.id!).sort(), `Encounter?${q}`);
      }
    });

    it('bounds only grow: a shorter value written later leaves them as they were', async () => {
      const before = await storedBounds(opened);
      await opened.store.transaction(async (tx) => {
        const r = { resourceType: 'Observation', id: 'open', status: 'final', code: { text: 'x' }, effectiveDateTime: '2020-06-01T10:00:00Z' } as Resource;
        await tx.write('R4', { type: 'Observation', id: 'open', versionId: 2, lastUpdated: '2024-01-02T00:00:00.000Z', method: 'PUT', json: JSON.stringify(r), index: extractIndex(registry, r) });
        resources.splice(resources.findIndex((x) => x.id === 'open'), 1, r);
      });
      await agree();
      assert.deepEqual(await storedBounds(opened), before);
    });
  });
}

describe('date bounds of one resource\'s rows (rowBounds)', () => {
  it('the longest span per parameter, several values or one; a row that ends before it starts (stored before extraction ordered its ends) is an infinite span', () => {
    assert.deepEqual(
      rowBounds([
        { code: 'date', lo: 0, hi: 10 },
        { code: 'date', lo: 5, hi: 8 },
        { code: 'other', lo: 100, hi: 100 },
        { code: 'open', lo: -Infinity, hi: 3 },
        { code: 'inverted', lo: 10, hi: 5 },
      ]),
      [
        { code: 'date', span: 10, multi: 1 },
        { code: 'other', span: 0, multi: 0 },
        { code: 'open', span: Infinity, multi: 0 },
        { code: 'inverted', span: Infinity, multi: 0 },
      ],
    );
  });
});

describe('date bounds of a database written before them: the migration computes them from its rows', () => {
  // Two Observations (values of a second and of a day) and two Goals (one with two target dates,
  // one open at its start), as rows of the earlier schema.
  const DAY = 86_400_000;
  const rows: [string, string, string, number, number, number][] = [
    ['Observation', 'o1', 'date', 0, Date.UTC(2020, 0, 1), Date.UTC(2020, 0, 1) + 999],
    ['Observation', 'o2', 'date', 0, Date.UTC(2020, 0, 2), Date.UTC(2020, 0, 2) + DAY - 1],
    ['Goal', 'g1', 'target-date', 0, Date.UTC(2020, 0, 1), Date.UTC(2020, 0, 1) + DAY - 1],
    ['Goal', 'g1', 'target-date', 1, Date.UTC(2020, 1, 1), Date.UTC(2020, 1, 1) + DAY - 1],
    ['Goal', 'g2', 'target-date', 0, -Infinity, Date.UTC(2020, 1, 1)],
    // A Period that ends before it starts: an infinite span (migration 10 on SQLite, 7 on PostgreSQL).
    ['Encounter', 'e1', 'date', 0, Date.UTC(2024, 5, 1), Date.UTC(2023, 11, 1)],
  ];
  const expected = {
    'Encounter|date': { span: Infinity, multi: 0 },
    'Goal|target-date': { span: Infinity, multi: 1 },
    'Observation|date': { span: DAY - 1, multi: 0 },
  };

  it('on SQLite (migrations 9 and 10)', async () => {
    const { MIGRATIONS } = await import('../../src/store/sqlite/migrations.ts');
    const { migrate } = await import('../../src/store/sqlite/connection.ts');
    const db = new Database(':memory:');
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    const before = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE date_bounds'));
    for (let v = 1; v <= before; v++) {
      db.exec(MIGRATIONS[v - 1]!);
      db.prepare('INSERT INTO schema_migrations VALUES (?, ?)').run(v, 'then');
    }
    const put = db.prepare("INSERT INTO sp_date (fv, type, id, code, n, grp, lo, hi) VALUES ('R4', ?, ?, ?, ?, 0, ?, ?)");
    for (const r of rows) put.run(...r);
    migrate(db);
    assert.deepEqual(toBounds(db.prepare('SELECT type, code, span, multi FROM date_bounds').all() as Record<string, unknown>[]), expected);
    db.close();
  });

  it('on PostgreSQL (migrations 6 and 7)', async () => {
    const { MIGRATIONS } = await import('../../src/store/postgres/schema.ts');
    const url = await createDatabase();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('CREATE TABLE herald_migrations (version integer PRIMARY KEY, applied_at text NOT NULL)');
      const before = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE date_bounds'));
      for (let v = 1; v <= before; v++) {
        await client.query(MIGRATIONS[v - 1]!);
        await client.query('INSERT INTO herald_migrations VALUES ($1, $2)', [v, 'then']);
      }
      for (const r of rows) await client.query("INSERT INTO sp_date (fv, type, id, code, n, grp, lo, hi) VALUES ('R4', $1, $2, $3, $4, 0, $5, $6)", r);
      const store = await openPostgresStore({ url, poolSize: 1, searchPoolSize: 1 });
      await store.close();
      assert.deepEqual(toBounds((await client.query('SELECT type, code, span, multi FROM date_bounds')).rows), expected);
    } finally {
      await client.end();
      await dropDatabase(url);
    }
  });
});

/**
 * The bounds are read in a statement of their own, before the count and the page: a write that
 * widens them in between must not hide what it wrote (search-run.ts reads them again and searches
 * again). The search's steps run here on a connection of the test's own, with the write made
 * right after the first bounds were read.
 */
describe('a write that widens the bounds while a search runs', () => {
  const cases: { name: string; type: string; q: string; before: Resource; after: Resource }[] = [
    {
      name: 'the span grows (a day becomes two years that still hold the date)',
      type: 'Observation',
      q: 'date=ge2020-06-15',
      before: { resourceType: 'Observation', id: 'x', status: 'final', code: { text: 'x' }, effectiveDateTime: '2020-06-20' } as Resource,
      after: { resourceType: 'Observation', id: 'x', status: 'final', code: { text: 'x' }, effectivePeriod: { start: '2019-01-01', end: '2020-12-31' } } as Resource,
    },
    {
      name: 'a parameter becomes multi-valued (two targets, each meeting one condition)',
      type: 'Goal',
      q: 'target-date=ge2020-06-01&target-date=lt2020-07-01',
      before: { resourceType: 'Goal', id: 'g', lifecycleStatus: 'active', description: { text: 'x' }, subject: { reference: 'Patient/p' }, target: [{ dueDate: '2020-06-20' }] } as Resource,
      after: { resourceType: 'Goal', id: 'g', lifecycleStatus: 'active', description: { text: 'x' }, subject: { reference: 'Patient/p' }, target: [{ dueDate: '2019-01-01' }, { dueDate: '2021-01-01' }] } as Resource,
    },
  ];
  for (const [storeName, open] of STORES) {
    for (const c of cases) {
      it(`${storeName}: ${c.name}`, async () => {
        const t = await open(`race-${c.type}`);
        const put = (r: Resource, versionId: number) =>
          t.store.transaction(async (tx) =>
            tx.write('R4', { type: c.type, id: r.id!, versionId, lastUpdated: '2024-01-01T00:00:00.000Z', method: 'PUT', json: JSON.stringify(r), index: extractIndex(registry, r) }),
          );
        const request = parseSearch(registry, [c.type], new URLSearchParams(c.q), { strict: true, defaultCount: 1000, maxCount: 1000 });
        const matches = (r: Resource) => compileMatcher(registry, c.type, c.q, { now: () => NOW.getTime() }).matches(r);
        assert.ok(matches(c.before) && matches(c.after), 'the resource matches before and after the write');
        // A search through the store waits for the write's rows (and bounds) to be in the index
        // (SQLite moves them after the commit).
        const indexed = () => t.store.search('R4', parseSearch(registry, [c.type], new URLSearchParams('_id=' + c.after.id), { strict: true, defaultCount: 10, maxCount: 10 }));
        try {
          await put(c.before, 1);
          await indexed();
          const db = await t.connect();
          const steps = searchSteps(t.dialect, 'R4', request, NOW.getTime());
          let step = steps.next();
          let queries = 0;
          while (!step.done) {
            const rows = await db.run(step.value.sql, step.value.args);
            if (queries++ === 0) {
              await put(c.after, 2);
              await indexed();
            }
            step = steps.next(rows);
          }
          await db.end();
          assert.deepEqual(step.value.matches.map((m) => m.id), [c.after.id]);
          assert.equal(step.value.total, 1);
        } finally {
          await t.close();
        }
      });
    }
  }
});
