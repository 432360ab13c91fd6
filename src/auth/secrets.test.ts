/**
 * Subscription secrets (issue 13, SEC-3): channel header values, R5 parameter values and endpoint
 * userinfo are masked for everyone but the owner; nothing else changes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resource } from '../fhir/types.ts';
import { MASK, maskSubscriptionSecrets } from './secrets.ts';

const r4 = (channel: Record<string, unknown>): Resource => ({ resourceType: 'Subscription', id: 's', status: 'active', criteria: 'x', channel: { type: 'rest-hook', ...channel } }) as Resource;

describe('maskSubscriptionSecrets', () => {
  it('masks R4/R4B header values, keeping the header names', () => {
    const out = maskSubscriptionSecrets(r4({ endpoint: 'https://r.example/hook', header: ['Authorization: Bearer abc', 'X-Key:k1', 'no-colon-secret'] })) as any;
    assert.deepEqual(out.channel.header, [`Authorization: ${MASK}`, `X-Key: ${MASK}`, MASK]);
    assert.equal(out.channel.endpoint, 'https://r.example/hook');
    assert.equal(out.channel.type, 'rest-hook');
  });

  it('masks the userinfo of an endpoint, R4 and R5, and leaves host, path and query', () => {
    const out = maskSubscriptionSecrets(r4({ endpoint: 'https://user:pa%40ss@r.example:8443/hook?x=1' })) as any;
    assert.equal(out.channel.endpoint, `https://${MASK}@r.example:8443/hook?x=1`);
    const r5 = maskSubscriptionSecrets({ resourceType: 'Subscription', endpoint: 'https://tok@r.example/h' } as Resource) as any;
    assert.equal(r5.endpoint, `https://${MASK}@r.example/h`);
  });

  it('masks R5 parameter values, keeping their names', () => {
    const out = maskSubscriptionSecrets({ resourceType: 'Subscription', endpoint: 'https://r.example/h', parameter: [{ name: 'Authorization', value: 'Bearer abc' }, { name: 'X' }] } as Resource) as any;
    assert.deepEqual(out.parameter, [{ name: 'Authorization', value: MASK }, { name: 'X' }]);
  });

  it('returns the resource itself when it holds no secret, and never changes its input', () => {
    const plain = r4({ endpoint: 'https://r.example/hook', header: [] });
    assert.equal(maskSubscriptionSecrets(plain), plain);
    const withSecret = r4({ endpoint: 'https://r.example/hook', header: ['A: b'] });
    const copy = structuredClone(withSecret);
    const out = maskSubscriptionSecrets(withSecret);
    assert.notEqual(out, withSecret);
    assert.deepEqual(withSecret, copy);
    assert.ok(!JSON.stringify(out).includes(': b'));
  });
});
