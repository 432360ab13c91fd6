import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { browserGuard } from './browser.ts';

describe('browserGuard.hostAllowed: DNS rebinding (issue 13)', () => {
  const guard = browserGuard({ baseUrl: 'https://herald.example.org', listenHost: '127.0.0.1', origins: [], authMode: false });
  const allowed = ['herald.example.org', 'HERALD.example.org.', '127.0.0.1:8080', 'localhost:8080', '[::1]:8080'];
  const refused = ['attacker.example', 'herald.example.org.attacker.example', '10.0.0.8:8080', 'a b', '', undefined];

  it('answers the same when asked again (the answer is remembered)', () => {
    for (let round = 0; round < 3; round++) {
      for (const host of allowed) assert.equal(guard.hostAllowed(host), true, host);
      for (const host of refused) assert.equal(guard.hostAllowed(host), false, String(host));
    }
  });

  it('still answers right after more distinct Host values than it remembers (a client choosing the header)', () => {
    for (let i = 0; i < 2_500; i++) assert.equal(guard.hostAllowed(`h${i}.attacker.example`), false);
    for (const host of allowed) assert.equal(guard.hostAllowed(host), true, host);
    for (const host of refused) assert.equal(guard.hostAllowed(host), false, String(host));
  });
});
