/**
 * The floor: the least work a create or read of a Patient can cost on this machine, to compare Herald
 * against. A bare fastify app that parses the JSON body, assigns an id and meta, and inserts one row
 * into SQLite with Herald's durability settings (WAL, synchronous=FULL), one implicit transaction
 * (one fsync) per request. No validation, no logging, no group commit.
 *   PORT=8081 FLOOR_DB=/tmp/floor.db node --import tsx bench/floor.ts
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import Fastify from 'fastify';

const port = Number(process.env.PORT ?? 8081);
const host = process.env.HOST ?? '127.0.0.1';
const db = new Database(process.env.FLOOR_DB ?? '/tmp/herald-floor.db');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec(`CREATE TABLE IF NOT EXISTS resources (
  type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, last_updated TEXT NOT NULL, body TEXT NOT NULL,
  PRIMARY KEY (type, id, version))`);
const insert = db.prepare('INSERT INTO resources (type, id, version, last_updated, body) VALUES (?, ?, ?, ?, ?)');
const select = db.prepare<[string, string], { body: string }>(
  'SELECT body FROM resources WHERE type = ? AND id = ? ORDER BY version DESC LIMIT 1',
);

const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
app.addContentTypeParser('application/fhir+json', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));

app.get('/healthz', async () => ({ status: 'ok' }));

app.post('/fhir/R4/Patient', async (req, reply) => {
  const resource = req.body as Record<string, unknown>;
  const id = randomUUID();
  const lastUpdated = new Date().toISOString();
  const stored = { ...resource, id, meta: { versionId: '1', lastUpdated } };
  const json = JSON.stringify(stored);
  insert.run('Patient', id, 1, lastUpdated, json);
  return reply.code(201).header('content-type', 'application/fhir+json').header('location', `/fhir/R4/Patient/${id}/_history/1`).send(json);
});

app.get<{ Params: { id: string } }>('/fhir/R4/Patient/:id', async (req, reply) => {
  const row = select.get('Patient', req.params.id);
  if (!row) return reply.code(404).send({ resourceType: 'OperationOutcome' });
  return reply.header('content-type', 'application/fhir+json').send(row.body);
});

const stop = () => {
  app.close().then(
    () => {
      db.close();
      process.exit(0);
    },
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

await app.listen({ port, host });
