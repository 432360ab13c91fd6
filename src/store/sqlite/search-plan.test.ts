import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { loadDefinitions } from '../../fhir/definitions/index.ts';
import { searchRegistry } from '../../search/parameters.ts';
import { parseSearch } from '../../search/parse.ts';
import type { DateBounds } from '../date-bounds.ts';
import { pageQuery } from '../search-page.ts';
import { dialect } from './search.ts';
import { migrate } from './connection.ts';

/**
 * The query plans SQLite chooses for search SQL: regressions here are invisible to result tests
 * and turn a search quadratic (a sort over 5,000 Patients once took seconds and held the server).
 */
describe('search query plans', () => {
  const db = new Database(':memory:');
  migrate(db);
  const registry = searchRegistry(loadDefinitions('R4'));
  const plan = (type: string, query: string, bounds: DateBounds = new Map()) => {
    const req = parseSearch(registry, [type], new URLSearchParams(query), { strict: true, defaultCount: 10, maxCount: 100, baseUrl: 'http://h.test/fhir/R4' });
    const q = pageQuery('R4', req, dialect, Date.now(), 11, undefined, bounds);
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

  describe('a month of a date parameter (date-bounds.ts)', () => {
    const MONTH = 'date=ge2020-06-01&date=lt2020-07-01';
    const dateRows = (lines: string[]) => lines.filter((l) => /SEARCH x\d+ /.test(l));

    it('without bounds: one condition reads the parameter from its start, the other probes each', () => {
      const rows = dateRows(plan('Observation', MONTH));
      assert.equal(rows.length, 2, rows.join('\n'));
      assert.match(rows[0]!, /USING COVERING INDEX sp_date_v \(fv=\? AND type=\? AND code=\?\)$/);
    });

    it('with a finite span and one value per resource: one range of lo, both conditions on its rows', () => {
      const rows = dateRows(plan('Observation', MONTH, new Map([['Observation|date', { span: 1000, multi: false }]])));
      assert.equal(rows.length, 1, rows.join('\n'));
      assert.match(rows[0]!, /USING COVERING INDEX sp_date_v \(fv=\? AND type=\? AND code=\? AND lo>\? AND lo<\?\)$/);
    });

    it('with several values per resource: each condition still on its own rows, the first bounded', () => {
      const rows = dateRows(plan('Observation', MONTH, new Map([['Observation|date', { span: 1000, multi: true }]])));
      assert.equal(rows.length, 2, rows.join('\n'));
      assert.match(rows[0]!, /sp_date_v \(fv=\? AND type=\? AND code=\? AND lo>\?\)$/);
    });

    it('with an infinite span (a value open at one end): one row, read from the start to the end of the month', () => {
      const rows = dateRows(plan('Observation', MONTH, new Map([['Observation|date', { span: Infinity, multi: false }]])));
      assert.equal(rows.length, 1, rows.join('\n'));
      assert.match(rows[0]!, /sp_date_v \(fv=\? AND type=\? AND code=\? AND lo<\?\)$/);
    });

    it('_lastUpdated stays on the resource\'s own column, whatever the bounds table holds', () => {
      const lines = plan('Patient', '_lastUpdated=ge2020-06-01&_lastUpdated=lt2020-07-01', new Map([['Patient|_lastUpdated', { span: 1000, multi: false }]]));
      assert.ok(!lines.some((l) => l.includes('sp_date')), lines.join('\n'));
    });
  });

  it('keeps every key of a multi-key sort on the primary key', () => {
    const lines = plan('Patient', '_sort=family,given,birthdate,gender,address-city');
    const lookups = lines.filter((l) => / s USING /.test(l));
    assert.equal(lookups.length, 5, lines.join('\n'));
    for (const l of lookups) assert.match(l, /PRIMARY KEY/, lines.join('\n'));
  });
});
