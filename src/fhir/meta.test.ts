import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseJson } from './json.ts';
import { sameJson, stamp } from './meta.ts';

describe('sameJson (a no-op update is found with it)', () => {
  it('ignores key order and undefined members, not array order or types', () => {
    assert.ok(sameJson({ a: 1, b: [{ x: 'y' }, 2] }, { b: [{ x: 'y' }, 2], a: 1 }));
    assert.ok(sameJson({ a: 1, gone: undefined }, { a: 1 }));
    assert.ok(sameJson({ a: 1 }, { a: 1, gone: undefined }));
    assert.ok(!sameJson({ a: [1, 2] }, { a: [2, 1] }));
    assert.ok(!sameJson({ a: 1 }, { a: '1' }));
    assert.ok(!sameJson({ a: [] }, { a: {} }));
    assert.ok(!sameJson({ a: 1 }, { a: 1, b: null }));
    assert.ok(!sameJson({ a: { b: 1 } }, { a: { b: 1, c: 2 } }));
    assert.ok(!sameJson({ a: 1, c: undefined }, { a: 1, b: 2 }));
  });

  it('tells numbers apart by how they were written (1.50 is not 1.5)', () => {
    assert.ok(sameJson(parseJson('{"a":[1.50],"b":{"c":2.0}}'), parseJson('{"b":{"c":2.0},"a":[1.50]}')));
    assert.ok(!sameJson(parseJson('{"a":1.50}'), parseJson('{"a":1.5}')));
    assert.ok(!sameJson(parseJson('{"a":[1.5]}'), parseJson('{"a":[1.50]}')));
    assert.ok(!sameJson(parseJson('{"a":{"b":1e2}}'), { a: { b: 100 } }));
    assert.ok(sameJson(parseJson('{"a":{"b":100}}'), { a: { b: 100 } }));
  });

  it('stamp keeps the client\'s meta but the server\'s versionId and lastUpdated', () => {
    const r = stamp({ resourceType: 'Patient', meta: { versionId: '9', tag: [{ code: 't' }] }, active: true }, 'p', 2, '2026-01-01T00:00:00.000Z');
    assert.deepEqual(r, { resourceType: 'Patient', id: 'p', meta: { versionId: '2', tag: [{ code: 't' }], lastUpdated: '2026-01-01T00:00:00.000Z' }, active: true });
  });
});
