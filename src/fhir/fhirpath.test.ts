import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CRITERIA_LIMITS, compileCriteria } from './fhirpath.ts';

/** A Patient with `n` names of three given names each. */
const patient = (n: number, family = 'Doe') => ({
  resourceType: 'Patient',
  id: 'p1',
  name: Array.from({ length: n }, (_, i) => ({ family: `${family}${i}`, given: ['a', 'b', 'c'] })),
});

/** `%current.name.select(…)` nested `depth` times. */
function nestedSelect(depth: number): string {
  let e = '%current.name.given';
  for (let i = 0; i < depth; i++) e = `%current.name.select(${e})`;
  return `${e}.count() > 0`;
}

describe('topic FHIRPath is bounded (D-20)', () => {
  it('refuses an expression longer than the limit when compiled', () => {
    const long = `%current.id.exists()${' and true'.repeat(CRITERIA_LIMITS.maxLength / 9)}`;
    assert.throws(() => compileCriteria(long, 'R5'), new RegExp(`longer than ${CRITERIA_LIMITS.maxLength} characters`));
  });

  it(`allows ${CRITERIA_LIMITS.maxNesting} nested per-item functions and refuses more`, () => {
    const ok = compileCriteria(nestedSelect(CRITERIA_LIMITS.maxNesting), 'R5');
    assert.equal(ok(patient(2), undefined), true);
    assert.throws(() => compileCriteria(nestedSelect(CRITERIA_LIMITS.maxNesting + 1), 'R5'), /nests 4 per-item functions/);
    assert.throws(() => compileCriteria("name.where(given.where($this.exists(family.select(%current.id.all(true)))))", 'R5'), /nests 5/);
    // Side by side is not nesting.
    assert.ok(compileCriteria('name.where(given.exists()).exists() and name.select(family).exists() and name.all(given.exists()) and id.exists()', 'R5'));
  });

  it('a criterion that throws at run time throws to its caller, which counts it as not triggered', () => {
    assert.throws(() => compileCriteria('(1 | 2) + 1 = 3', 'R4')(patient(1), undefined));
    assert.throws(() => compileCriteria('%current.name.family.single() = \'x\'', 'R4')(patient(2), undefined), /single/i);
    assert.equal(compileCriteria('%current.name.family.single() = \'Doe0\'', 'R4')(patient(1), undefined), true);
  });

  it('an evaluation past its budget throws (collection size or time)', () => {
    const fn = compileCriteria(nestedSelect(3), 'R5');
    const started = performance.now();
    assert.throws(() => fn(patient(60), undefined), /exceeds its budget/);
    console.log(`# a 3-deep select over 60 names stopped after ${(performance.now() - started).toFixed(1)} ms`);
  });

  it('matches, matchesFull and replaceMatches run on RE2: a catastrophic pattern is linear', () => {
    const evil = `%current.name.family.first().matches('^(a+)+$')`;
    const fn = compileCriteria(evil, 'R5');
    // Backtracking would take 2^200 steps on this: finishing at all shows the engine is linear.
    const p = { resourceType: 'Patient', name: [{ family: `${'a'.repeat(200)}b` }] };
    const started = performance.now();
    assert.equal(fn(p, undefined), false);
    console.log(`# matches('^(a+)+$') on 201 characters took ${(performance.now() - started).toFixed(1)} ms`);
    assert.equal(fn({ resourceType: 'Patient', name: [{ family: 'aaaa' }] }, undefined), true);
    const full = compileCriteria(`%current.name.family.first().matchesFull('(a+)+')`, 'R5');
    assert.equal(full(p, undefined), false);
    assert.equal(full({ resourceType: 'Patient', name: [{ family: 'aaa' }] }, undefined), true);
    const replaced = compileCriteria(`%current.name.family.first().replaceMatches('(a+)+b', 'x') = 'x'`, 'R5');
    assert.equal(replaced(p, undefined), true);
  });

  it('regex flags: i and m as FHIRPath defines them; `.` matches newlines; other flags and lookaround throw', () => {
    const on = (family: string, expr: string) => compileCriteria(expr, 'R5')({ resourceType: 'Patient', name: [{ family }] }, undefined);
    assert.equal(on('ABC', "%current.name.family.first().matches('^abc$', 'i')"), true);
    assert.equal(on('ABC', "%current.name.family.first().matches('^abc$')"), false);
    assert.equal(on('x\nabc', "%current.name.family.first().matches('^abc$', 'm')"), true);
    assert.equal(on('a\nb', "%current.name.family.first().matches('^a.b$')"), true);
    assert.throws(() => on('abc', "%current.name.family.first().matches('abc', 'g')"), /flags/);
    assert.throws(() => on('abc', "%current.name.family.first().matches('a(?=b)')"), /invalid/i);
  });

  it('resolve() is X (rewritten into a reference test) still works with RE2', () => {
    const fn = compileCriteria('%current.subject.where(resolve() is Patient).exists()', 'R4');
    assert.equal(fn({ resourceType: 'Observation', subject: { reference: 'Patient/1' } }, undefined), true);
    assert.equal(fn({ resourceType: 'Observation', subject: { reference: 'Group/1' } }, undefined), false);
  });
});
