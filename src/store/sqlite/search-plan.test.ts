import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { loadDefinitions } from '../../fhir/definitions/index.ts';
import { searchRegistry } from '../../search/parameters.ts';
import { parseSearch } from '../../search/parse.ts';
import { pageQuery } from '../search-page.ts';
import { migrate } from './connection.ts';

/**
 * The query plans SQLite chooses for search SQL: regressions here are invisible to result tests
 * and turn a search quadratic (a sort over 5,000 Patients once took seconds and held the server).
 */
describe('search query plans', () => {
  const db = new Database(':memory:');
  migrate(db);
  const registry = searchRegistry(loadDefinitions('R4'));
  const dialect = { contains: (h: string, n: string) => `instr(${h}, ${n}) > 0` };
  const plan = (type: string, query: string) => {
    const req = parseSearch(registry, [type], new URLSearchParams(query), { strict: true, defaultCount: 10, maxCount: 100, baseUrl: 'http://h.test/fhir/R4' });
    const q = pageQuery('R4', req, dialect, Date.now(), 11);
    return db
      .prepare(`EXPLAIN QUERY PLAN ${q.sql}`)
      .all(...q.args)
      .map((r) => (r as { detail: string }).detail);
  };

  // One sort key of each row kind, ascending and descending.
  const keys: [string, string][] = [
    ['Patient', 'family'],
    ['Patient', 'gender'],
    ['Patient', 'birthdate'],
    ['Patient', 'general-practitioner'],
    ['Observation', 'value-quantity'],
    ['RiskAssessment', 'probability'],
    ['ValueSet', 'url'],
  ];
  for (const [type, code] of keys) {
    for (const dir of ['', '-']) {
      it(`sorts ${type} by ${dir}${code} through the owner's primary key, one lookup per resource`, () => {
        const lines = plan(type, `_sort=${dir}${code}`);
        const lookups = lines.filter((l) => / s USING /.test(l));
        assert.equal(lookups.length, 1, lines.join('\n'));
        assert.match(lookups[0]!, /USING PRIMARY KEY \(fv=\? AND type=\? AND id=\? AND code=\?\)/, lines.join('\n'));
      });
    }
  }

  it('keeps every key of a multi-key sort on the primary key', () => {
    const lines = plan('Patient', '_sort=family,given,birthdate,gender,address-city');
    const lookups = lines.filter((l) => / s USING /.test(l));
    assert.equal(lookups.length, 5, lines.join('\n'));
    for (const l of lookups) assert.match(l, /PRIMARY KEY/, lines.join('\n'));
  });
});
