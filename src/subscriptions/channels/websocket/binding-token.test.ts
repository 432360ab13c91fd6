/** Websocket binding tokens (D-2, issue 13): kept only as hashes, compared in constant time. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { bindingTokenHash, bindingTokenMatches } from './binding-token.ts';

describe('binding token hashes', () => {
  it('hash a token to a fixed-length key that does not contain it', () => {
    const token = randomBytes(32).toString('base64url');
    const hash = bindingTokenHash(token);
    assert.equal(hash.length, 43);
    assert.ok(!hash.includes(token));
    assert.equal(bindingTokenHash(token), hash);
  });

  it('match only the token they were made from, whatever the other side looks like', () => {
    const token = randomBytes(32).toString('base64url');
    const hash = bindingTokenHash(token);
    assert.equal(bindingTokenMatches(token, hash), true);
    assert.equal(bindingTokenMatches(`${token}x`, hash), false);
    assert.equal(bindingTokenMatches(token.slice(1), hash), false);
    assert.equal(bindingTokenMatches(token, hash.slice(1)), false, 'a shorter hash: no throw, no match');
    assert.equal(bindingTokenMatches(token, ''), false);
    assert.equal(bindingTokenMatches(token, token), false, 'the token itself is not its hash');
  });
});
