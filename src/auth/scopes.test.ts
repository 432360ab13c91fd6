/**
 * SMART scopes (issue 13, REQUIREMENTS §10, SEC-1, D-22): the v1 and v2 forms, the letter each
 * interaction needs, and how far several levels reach together.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Letter, parseScopes, principalOf, reach } from './scopes.ts';

const ALL: Letter[] = ['c', 'r', 'u', 'd', 's'];
/** The letters `scope` grants for `type` to a principal with a patient context. */
const letters = (scope: string, type = 'Observation') => {
  const p = principalOf('x', scope, 'p1', 'herald/admin');
  return ALL.filter((l) => reach(p, type, l) !== 'none').join('');
};

describe('parseScopes: SMART v1 and v2 forms', () => {
  it('v1: read is r+s, write is c+u+d, * is everything', () => {
    assert.equal(letters('system/Observation.read'), 'rs');
    assert.equal(letters('user/Observation.write'), 'cud');
    assert.equal(letters('system/Observation.*'), 'cruds');
    assert.equal(letters('user/*.read'), 'rs');
    assert.equal(letters('patient/*.*'), 'cruds');
  });

  it('v2: each interaction letter alone, and in combinations', () => {
    for (const l of ALL) assert.equal(letters(`system/Observation.${l}`), l);
    assert.equal(letters('system/Patient.rs', 'Patient'), 'rs');
    assert.equal(letters('user/Observation.cruds'), 'cruds');
    assert.equal(letters('system/Observation.cud'), 'cud');
    assert.equal(letters('patient/Observation.rs'), 'rs');
  });

  it('v2 letters must be in c r u d s order and known; anything else grants nothing', () => {
    for (const bad of ['system/Observation.sr', 'system/Observation.x', 'system/Observation.', 'system/Observation.cc', 'system/Observation.READ']) {
      assert.deepEqual(parseScopes(bad), [], bad);
    }
  });

  it('ignores other scopes, unknown levels and v2 scopes with query parameters', () => {
    const scope = 'openid fhirUser launch/patient offline_access herald/admin admin/Observation.read system/Observation.rs?category=laboratory';
    assert.deepEqual(parseScopes(scope), []);
    assert.equal(letters(scope), '');
  });

  it('records level, type and letters of each grant, across any whitespace', () => {
    const grants = parseScopes('  patient/Encounter.rs\tsystem/Subscription.cruds\n user/*.write ');
    assert.deepEqual(
      grants.map((g) => [g.level, g.type, [...g.letters].join('')]),
      [['patient', 'Encounter', 'rs'], ['system', 'Subscription', 'cruds'], ['user', '*', 'cud']],
    );
  });
});

describe('reach: which grant wins, and the patient context', () => {
  it('a grant for one type reaches only that type; * reaches every type', () => {
    const p = principalOf('x', 'system/Observation.rs', undefined, 'herald/admin');
    assert.equal(reach(p, 'Observation', 'r'), 'all');
    assert.equal(reach(p, 'Patient', 'r'), 'none');
    assert.equal(reach(p, 'Observation', 'c'), 'none');
    const star = principalOf('x', 'user/*.rs', undefined, 'herald/admin');
    assert.equal(reach(star, 'Encounter', 's'), 'all');
  });

  it('patient/ grants reach the compartment with a patient claim, nothing without one', () => {
    const withClaim = principalOf('x', 'patient/Observation.rs', 'p1', 'herald/admin');
    assert.equal(reach(withClaim, 'Observation', 'r'), 'patient');
    const without = principalOf('x', 'patient/Observation.rs', undefined, 'herald/admin');
    assert.equal(reach(without, 'Observation', 'r'), 'none');
  });

  it('several levels: any grant that allows wins, and the claim confines only the patient/ ones', () => {
    const p = principalOf('x', 'patient/Observation.rs patient/Encounter.rs system/Encounter.r', 'p1', 'herald/admin');
    assert.equal(reach(p, 'Observation', 'r'), 'patient');
    assert.equal(reach(p, 'Encounter', 'r'), 'all', 'system/ wins over patient/');
    assert.equal(reach(p, 'Encounter', 's'), 'patient', 'only patient/ grants search');
    assert.equal(reach(p, 'Encounter', 'c'), 'none');
    const order = principalOf('x', 'system/Encounter.r patient/Encounter.r', 'p1', 'herald/admin');
    assert.equal(reach(order, 'Encounter', 'r'), 'all', 'whatever the order');
  });

  it('patient/Subscription grants manage subscriptions by ownership, not by compartment', () => {
    const p = principalOf('x', 'patient/Subscription.cruds', 'p1', 'herald/admin');
    for (const l of ALL) assert.equal(reach(p, 'Subscription', l), 'all', l);
  });
});

describe('principalOf', () => {
  it('keeps identity, scope and patient; admin only with the exact admin scope', () => {
    const p = principalOf('alice', 'system/*.rs herald/admin', 'p9', 'herald/admin');
    assert.equal(p.id, 'alice');
    assert.equal(p.scope, 'system/*.rs herald/admin');
    assert.equal(p.patient, 'p9');
    assert.equal(p.admin, true);
    assert.equal(principalOf('a', 'herald/administrator', undefined, 'herald/admin').admin, false);
    assert.equal(principalOf('a', 'site/ops', undefined, 'site/ops').admin, true, 'the admin scope is configurable');
    assert.equal('patient' in principalOf('a', 'system/*.rs', undefined, 'herald/admin'), false);
  });
});
