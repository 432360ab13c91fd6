import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openSqliteStore } from '../../store/sqlite/index.ts';
import type { NewEvent, Store, StoredEvent } from '../../store/store.ts';
import { createLogReader } from './log-reader.ts';

const event = (subscription: string, id: string): NewEvent => ({ subscription, timestamp: '2026-01-01T00:00:00.000Z', focus: { type: 'Patient', id, versionId: 1 }, interaction: 'create' });

describe('the channels\' log reader (issue 15)', () => {
  let store: Store;
  // The real store, with its reads counted: a primed ask must not read.
  let reads = 0;
  let counted: Store;

  before(async () => {
    store = await openSqliteStore({ path: ':memory:' });
    counted = Object.create(store, {
      events: { value: (...a: Parameters<Store['events']>) => ((reads += 1), store.events(...a)) },
      eventsAfter: { value: (...a: Parameters<NonNullable<Store['eventsAfter']>>) => ((reads += 1), store.eventsAfter!(...a)) },
    }) as Store;
  });
  after(() => store.close());

  /** Appends in one transaction; the events as the store numbered them with the commit. */
  async function commit(events: NewEvent[]): Promise<StoredEvent[]> {
    let numbered: StoredEvent[] | undefined;
    await store.transaction(async (tx) => {
      await tx.appendEvents('R4', events);
      tx.onCommit(() => (numbered = tx.numbered?.(events)));
    });
    assert.ok(numbered, 'SQLite numbers the events with the commit');
    return numbered;
  }

  it('gets the numbers of a commit\'s events from the store, as the log has them', async () => {
    const numbered = await commit([event('a', 'p1'), event('b', 'p1'), event('a', 'p2')]);
    assert.deepEqual(numbered.map((e) => [e.subscription, e.number, e.focus.id]), [['a', 1, 'p1'], ['b', 1, 'p1'], ['a', 2, 'p2']]);
    assert.deepEqual(await store.events('R4', 'a', 1, 10, 10), numbered.filter((e) => e.subscription === 'a'));
  });

  it('answers an ask from the primed events without a read, and reads when they do not answer it whole', async () => {
    const reader = createLogReader(counted, 'R4', 10);
    // Two commits told in the same turn (as a group commit tells them).
    const one = await commit([event('c', 'p1'), event('d', 'p1')]);
    const two = await commit([event('c', 'p2')]);
    reader.prime(one);
    reader.prime(two);
    reads = 0;
    assert.deepEqual((await reader.read('c', 0)).events.map((e) => e.number), [1, 2]);
    assert.deepEqual((await reader.read('c', 1)).events.map((e) => e.number), [2]);
    // Asked again in the same turn (a sender woken by each job of a group commit): nothing new.
    assert.deepEqual(await reader.read('c', 2), { events: [], more: false });
    assert.equal(reads, 0, 'no read');
    // d is at 1; an ask from before a gap (an event that was never primed) reads the log.
    await commit([event('d', 'p2')]);
    reader.prime(await commit([event('d', 'p3')]));
    assert.deepEqual((await reader.read('d', 1)).events.map((e) => e.number), [2, 3]);
    assert.equal(reads, 1);
    // Kept across turns until released (the hub starts its senders over several turns)…
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual((await reader.read('c', 2)).events, []);
    assert.equal(reads, 1);
    // …then, with nothing told of 'c' since: the log.
    reader.release();
    assert.deepEqual((await reader.read('c', 2)).events, []);
    assert.equal(reads, 2);
  });

  it('forgets what a commit told without its events concerns, so the ask reads it', async () => {
    const reader = createLogReader(counted, 'R4', 10);
    reader.prime(await commit([event('e', 'p1')]));
    await commit([event('e', 'p2')]); // as if from another node: told, but not numbered
    reader.forget(['e']);
    reads = 0;
    assert.deepEqual((await reader.read('e', 0)).events.map((e) => e.number), [1, 2]);
    assert.equal(reads, 1);
  });

  it('keeps primed events until released, and cuts an answer at its batch', async () => {
    const reader = createLogReader(counted, 'R4', 2);
    reader.prime(await commit([event('f', 'p1'), event('f', 'p2'), event('f', 'p3')]));
    reads = 0;
    const first = await reader.read('f', 0);
    assert.deepEqual([first.events.map((e) => e.number), first.more], [[1, 2], true]);
    assert.equal(reads, 0);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual((await reader.read('f', 2)).events.map((e) => e.number), [3]);
    assert.equal(reads, 0, 'a later turn before the release: still no read');
    reader.release();
    assert.deepEqual((await reader.read('f', 1)).events.map((e) => e.number), [2, 3]);
    assert.equal(reads, 1, 'after the release: the log');
  });
});
