import { after } from 'node:test';
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
