import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { openEngine } from '../../test/helpers/engine.ts';
import type { Resource } from '../fhir/types.ts';
import { openSqliteStore } from '../store/sqlite/index.ts';

describe('subscription owners in memory (D-22, issue 15)', () => {
  const opening = openSqliteStore({ path: ':memory:' });
  after(async () => (await opening).close());

  it('the subscriptions of one owner, scope and patient context share one principal; any difference gets its own', async () => {
    const store = await opening;
    const scope = 'system/Patient.rs system/Subscription.cruds';
    await store.transaction(async (tx) => {
      await tx.putSubscriptionOwner('R4', { subscription: 'a', owner: 'app', scope });
      await tx.putSubscriptionOwner('R4', { subscription: 'b', owner: 'app', scope });
      await tx.putSubscriptionOwner('R4', { subscription: 'c', owner: 'app', scope: 'system/Subscription.cruds' });
      await tx.putSubscriptionOwner('R4', { subscription: 'd', owner: 'other', scope });
      await tx.putSubscriptionOwner('R4', { subscription: 'e', owner: 'app', scope: 'patient/Patient.rs patient/Subscription.cruds', patient: 'p1' });
      await tx.putSubscriptionOwner('R4', { subscription: 'f', owner: 'app', scope: 'patient/Patient.rs patient/Subscription.cruds', patient: 'p2' });
    });
    const { engine } = await openEngine('R4', store);
    const owner = (id: string) => engine.ownerPrincipal(id)!;
    assert.equal(owner('a'), owner('b'), 'one token, one principal');
    const distinct = new Set(['a', 'c', 'd', 'e', 'f'].map(owner));
    assert.equal(distinct.size, 5, 'another scope, owner or patient context is another principal');
    // What each subscription's owner says is still its own.
    assert.deepEqual(
      ['a', 'c', 'd', 'e', 'f'].map((id) => [owner(id).id, owner(id).scope, owner(id).patient, engine.ownerIdOf(id)]),
      [
        ['app', scope, undefined, 'app'],
        ['app', 'system/Subscription.cruds', undefined, 'app'],
        ['other', scope, undefined, 'other'],
        ['app', 'patient/Patient.rs patient/Subscription.cruds', 'p1', 'app'],
        ['app', 'patient/Patient.rs patient/Subscription.cruds', 'p2', 'app'],
      ],
    );
    assert.equal(engine.ownerMayRead('e', { resourceType: 'Patient', id: 'p2' }), false, "a patient context is the principal's own");
    assert.equal(engine.ownerMayRead('f', { resourceType: 'Patient', id: 'p2' }), true);
  });
});

describe('classic (R4 criteria) subscriptions', () => {
  const opening = openSqliteStore({ path: ':memory:' });
  after(async () => (await opening).close());

  it('a classic subscription\'s own topic goes when it is deleted or no longer classic', async () => {
    const store = await opening;
    const { engine } = await openEngine('R4', store);
    const write = (id: string, resource: Resource | undefined) =>
      store.transaction(async (tx) => {
        await engine.writeVersion(tx, 'Subscription', id, resource, await tx.read('R4', 'Subscription', id), resource ? 'PUT' : 'DELETE');
      });
    const classic = (id: string): Resource =>
      ({ resourceType: 'Subscription', id, status: 'requested', reason: 'classic', criteria: 'Observation?code=http://loinc.org|1234-5', channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:1/hook', payload: 'application/fhir+json' } }) as Resource;
    await write('c1', classic('c1'));
    await write('c2', classic('c2'));
    assert.ok(engine.registry.topic('classic:c1') && engine.registry.topic('classic:c2'));
    assert.ok(engine.registry.watches('Observation'));
    await write('c1', undefined);
    assert.equal(engine.registry.topic('classic:c1'), undefined, 'deleted: its criteria are no longer tested');
    await write('c2', { ...classic('c2'), criteria: 'Observation?code=http://loinc.org|9999-9' });
    assert.ok(engine.registry.topic('classic:c2'), 'updated, still classic: its topic stays (with the new criteria)');
    assert.equal(engine.registry.topic('classic:c2')!.resourceTriggers[0]!.queryCriteria?.current, 'Observation?code=http://loinc.org|9999-9');
    await write('c2', { ...classic('c2'), status: 'off' });
    assert.ok(engine.registry.topic('classic:c2'), 'switched off, still there (it may be switched on again)');
    await write('c2', undefined);
    assert.equal(engine.registry.topic('classic:c2'), undefined);
    assert.equal(engine.registry.watches('Observation'), false, 'no topic left on Observation');
  });
});
