import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createDatabase, dropDatabase } from '../../../test/helpers/postgres.ts';
import { storeContract } from '../store.contract.ts';
import { openPostgresStore } from './index.ts';

const made: string[] = [];
after(async () => Promise.all(made.map(dropDatabase)));

storeContract('postgres', async () => {
  const url = await createDatabase();
  made.push(url);
  return openPostgresStore({ url, poolSize: 4 });
});

describe('postgres: shared secrets', () => {
  it('keeps the first candidate stored under a name, for every store on the database and after a reopen', async () => {
    const url = await createDatabase();
    made.push(url);
    const [a, b] = await Promise.all([openPostgresStore({ url, poolSize: 2 }), openPostgresStore({ url, poolSize: 2 })]);
    const [fromA, fromB] = await Promise.all([a.sharedSecret!('k', 'from-a'), b.sharedSecret!('k', 'from-b')]);
    assert.equal(fromA, fromB);
    assert.ok(['from-a', 'from-b'].includes(fromA));
    assert.equal(await a.sharedSecret!('other', 'x'), 'x', 'names are independent');
    await Promise.all([a.close(), b.close()]);
    const again = await openPostgresStore({ url, poolSize: 2 });
    assert.equal(await again.sharedSecret!('k', 'later'), fromA);
    await again.close();
  });
});
