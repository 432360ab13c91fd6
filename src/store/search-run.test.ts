import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { loadDefinitions } from '../fhir/definitions/index.ts';
import { searchRegistry } from '../search/parameters.ts';
import { parseSearch } from '../search/parse.ts';
import { searchSteps } from './search-run.ts';
import { dialect } from './sqlite/search.ts';
import { migrate } from './sqlite/connection.ts';
import { INCLUDE_LIMITS } from './store.ts';

/**
 * _revinclude's reads are bounded by what a page can take: a Patient referenced by 5,000
 * Observations costs reads of about 1,000 references, not 5,000 (the search deadline was the only
 * bound before). Run on SQLite's own search steps, counting the rows each query returns.
 */
describe('_include and _revinclude read a bounded number of references', () => {
  const db = new Database(':memory:');
  migrate(db);
  const REFERRING = 5_000;
  const addResource = (type: string, id: string, body: object) => {
    const seq = db.prepare(`INSERT INTO resource_versions (fv, type, id, vid, last_updated, method, body) VALUES ('R4', ?, ?, 1, '2026-01-01T00:00:00Z', 'POST', ?)`).run(type, id, JSON.stringify({ resourceType: type, id, ...body })).lastInsertRowid;
    db.prepare(`INSERT INTO resources (fv, type, id, vid, seq, last_updated, deleted) VALUES ('R4', ?, ?, 1, ?, '2026-01-01T00:00:00Z', 0)`).run(type, id, seq);
  };
  db.transaction(() => {
    addResource('Patient', 'hub', {});
    const ref = db.prepare(`INSERT INTO sp_reference (fv, type, id, code, n, grp, target_type, target_id) VALUES ('R4', 'Observation', ?, 'subject', 0, 0, 'Patient', 'hub')`);
    for (let i = 0; i < REFERRING; i++) {
      addResource('Observation', `o${i}`, { status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/hub' } });
      ref.run(`o${i}`);
    }
  })();
  const registry = searchRegistry(loadDefinitions('R4'));

  it(`reads at most the page's room plus what it may find again, and says the page was cut`, () => {
    const req = parseSearch(registry, ['Patient'], new URLSearchParams('_id=hub&_revinclude=Observation:subject'), { strict: true, defaultCount: 10, maxCount: 100, baseUrl: 'http://h.test/fhir/R4' });
    const steps = searchSteps(dialect, 'R4', req, Date.now());
    let referencesRead = 0;
    let step = steps.next();
    while (!step.done) {
      const rows = db.prepare<unknown[], Record<string, unknown>>(step.value.sql).all(...step.value.args);
      if (step.value.sql.includes('sp_reference')) referencesRead += rows.length;
      step = steps.next(rows);
    }
    const page = step.value;
    assert.equal(page.matches.length, 1);
    assert.equal(page.included.length, INCLUDE_LIMITS.resources);
    assert.equal(page.includedCut, true);
    // The page's room (1,000), what it may find again (the one match) and one to tell that more are left.
    assert.ok(referencesRead <= INCLUDE_LIMITS.resources + 2, `${referencesRead} references read`);
  });
});
