import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RULE_NAMES, type Violation, check } from './architecture.rules.ts';

/**
 * The import rules of ARCHITECTURE.md ("Import rules"), checked with dependency-cruiser over src/:
 * see test/architecture.rules.ts. The same rules first run over a fixture tree that breaks each of
 * them once, so a rule that stopped seeing its violations fails here rather than passing quietly.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('fixtures/architecture', import.meta.url));

const lines = (violations: Violation[]) => violations.map((v) => `${v.rule} ${v.line}`).sort();

describe('architecture rules', () => {
  let found: Violation[] = [];
  before(async () => {
    found = await check(FIXTURE);
  });

  it('are each broken somewhere in test/fixtures/architecture', () => {
    assert.deepEqual([...RULE_NAMES.keys()].filter((rule) => !found.some((v) => v.rule === rule)), []);
  });

  it('catch each kind of violation there, and nothing that is allowed', () => {
    assert.deepEqual(lines(found), [
      // every kind of import counts: type-only, `typeof import()`, dynamic, side-effect, export … from, export *
      'client-in-browsers src/client/rest.ts → util', // client/cli.ts may
      'console-in-browsers src/console/app/main.ts → fs', // its client/index.ts passes
      'console-in-browsers src/console/app/main.ts → src/fhir/errors.ts',
      'direction:app.ts src/app.ts → src/client/index.ts',
      'direction:auth src/auth/index.ts → src/store/store.ts',
      'direction:client src/client/listener.ts → src/fhir/errors.ts',
      'direction:config.ts src/config.ts → src/fhir/errors.ts',
      'direction:console src/console/app/main.ts → src/fhir/errors.ts',
      'direction:fhir src/fhir/validate.ts → src/search/match.ts',
      'direction:heap-policy.ts src/heap-policy.ts → src/config.ts',
      'direction:http src/http/server.ts → src/config.ts',
      'direction:interactions src/interactions/index.ts → src/http/errors.ts',
      'direction:main.ts src/main.ts → src/http/server.ts',
      'direction:operations src/operations/context.ts → src/http/server.ts',
      'direction:operations src/operations/index.ts → src/http/server.ts',
      'direction:search src/search/types.ts → src/store/store.ts',
      'direction:store src/store/postgres/index.ts → src/interactions/index.ts',
      'direction:subscriptions src/subscriptions/index.ts → src/http/errors.ts',
      'direction:topics-folder.ts src/topics-folder.ts → src/store/store.ts',
      'entry:auth src/http/auth.ts → src/auth/verify.ts',
      'entry:fhir/definitions src/fhir/primitives.ts → src/fhir/definitions/format.ts',
      'entry:fhir/versions src/fhir/validate.ts → src/fhir/versions/r4.ts',
      'entry:interactions src/topics-folder.ts → src/interactions/crud.ts',
      'entry:operations src/http/errors.ts → src/operations/context.ts',
      'entry:store src/app.ts → src/store/sqlite/connection.ts', // its store/sqlite/index.ts passes
      'entry:store src/interactions/crud.ts → src/store/sqlite/index.ts',
      'entry:store src/subscriptions/engine.ts → src/store/search-sql.ts',
      'entry:subscriptions src/http/rest.ts → src/subscriptions/registry.ts',
      'in-a-module src/log.ts → src/fhir/errors.ts',
      // a runtime cycle; the type-only ones (search/types ⇄ store/store, fhir/versions) and the known one (interactions) pass
      'no-cycle src/fhir/cycle-a.ts ⇄ src/fhir/cycle-b.ts',
      // the system clock read outside the allowed files (client/, console/app/ and the counted reads pass)
      'one-clock src/store/postgres/index.ts may read the clock 1 time(s), reads it 0', // a stale allowance
      'one-clock src/store/sqlite/index.ts may read the clock 1 time(s), reads it 2 (:9 new Date(), :10 Date.now())',
      'one-clock src/subscriptions/registry.ts:10 { now } = Date',
      'one-clock src/subscriptions/registry.ts:4 Date.now()',
      'one-clock src/subscriptions/registry.ts:5 Date.now', // handed on as a default clock
      'one-clock src/subscriptions/registry.ts:6 new Date()',
      'one-clock src/subscriptions/registry.ts:7 Date.now()', // globalThis.Date.now()
      'one-clock src/subscriptions/registry.ts:8 Date()',
      'one-clock src/subscriptions/registry.ts:9 Date.now()', // Date['now']()
      'package:@fastify/compress src/interactions/validate.ts → @fastify/compress',
      'package:@fastify/cors src/interactions/validate.ts → @fastify/cors',
      'package:better-sqlite3 src/store/search-sql.ts → better-sqlite3',
      'package:fast-json-patch src/interactions/router.ts → fast-json-patch',
      'package:fastify src/search/match.ts → fastify',
      'package:fhirpath src/fhir/errors.ts → fhirpath', // through createRequire
      'package:jose src/http/auth.ts → jose',
      'package:pg src/store/store.ts → pg',
    'package:re2-wasm src/fhir/fhirpath.ts → re2-wasm',
      'package:undici src/http/websocket.ts → undici',
      'package:ws src/subscriptions/channels/websocket/hub.ts → ws',
      'process-entry src/http/server.ts → process',
      'process-entry src/http/websocket.ts:5 process.on',
      'process-entry src/interactions/crud.ts:6 { env } = process',
      'process-entry src/search/match.ts:4 globalThis.process.exit', // its process.pid passes
      'process-entry src/store/sqlite/index.ts:6 process.env', // its process.emitWarning passes
      'resolvable src/interactions/history.ts → ./gone.ts',
    ]);
  });
});

describe('architecture of src/ (ARCHITECTURE.md, Import rules)', () => {
  let found: Violation[] = [];
  before(async () => {
    found = await check(ROOT);
  });

  for (const [rule, says] of RULE_NAMES) {
    it(`${rule}: ${says}`, () => {
      const broken = found.filter((v) => v.rule === rule).map((v) => v.line);
      assert.deepEqual(broken, [], `${says}; broken by:\n  ${broken.join('\n  ')}`);
    });
  }
});
