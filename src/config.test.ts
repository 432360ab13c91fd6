import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from './config.ts';

describe('loadConfig: limits (issue 14)', () => {
  it('has sane defaults for every limit', () => {
    const c = loadConfig([], {});
    assert.deepEqual(c.http, { requestTimeoutMs: 60_000, headersTimeoutMs: 10_000, idleTimeoutMs: 120_000, keepAliveTimeoutMs: 5000, maxConnections: 10_000 });
    assert.deepEqual(c.ws, { maxConnections: 5000, maxConnectionsPerAddress: 500, maxSubscriptionsPerSocket: 1000, maxFailedBinds: 10 });
    assert.deepEqual(c.quotas, {
      minHeartbeatS: 10,
      maxDeliveryTimeoutS: 60,
      maxConcurrentDeliveries: 64,
      maxSubscriptionsPerTopic: 10_000,
      maxClassicSubscriptions: 1_000,
      maxFiltersPerSubscription: 20,
      maxSubscriptionsPerToken: 100,
    });
    assert.equal(c.eventLogMaxPerSubscription, 100_000);
    assert.equal(c.eventPruneIntervalMs, 3_600_000);
  });

  it('takes flags and environment variables', () => {
    const c = loadConfig(['--min-heartbeat-s', '1'], { HERALD_WS_MAX_FAILED_BINDS: '3' });
    assert.equal(c.quotas.minHeartbeatS, 1);
    assert.equal(c.ws.maxFailedBinds, 3);
  });

  it('refuses settings that contradict each other, naming both', () => {
    assert.throws(() => loadConfig([], { HERALD_HEADERS_TIMEOUT_MS: '20000', HERALD_REQUEST_TIMEOUT_MS: '10000' }), /HERALD_HEADERS_TIMEOUT_MS .* HERALD_REQUEST_TIMEOUT_MS/);
    assert.throws(() => loadConfig([], { HERALD_DELIVERY_TIMEOUT_MS: '90000' }), /HERALD_DELIVERY_TIMEOUT_MS .* HERALD_MAX_DELIVERY_TIMEOUT_S/);
    assert.throws(() => loadConfig([], { HERALD_MIN_HEARTBEAT_S: '0' }), /HERALD_MIN_HEARTBEAT_S must be an integer from 1/);
  });
});
