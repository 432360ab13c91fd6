import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CriterionFault, TopicFaults } from './faults.ts';

describe('faults of topic criteria (D-20)', () => {
  it('counts every fault, logs at most once a minute per topic with the number left out, and clears', () => {
    const lines: string[] = [];
    let now = Date.parse('2026-01-01T00:00:00Z');
    const faults = new TopicFaults(() => now, (l) => lines.push(l), () => now);
    const url = 'http://example.org/t';
    for (let i = 0; i < 5; i++) {
      faults.record(url, new CriterionFault('resourceTrigger[0].fhirPathCriteria', new Error('Expected single')));
      now += 1000;
    }
    faults.record('http://example.org/other', new Error('boom'));
    assert.equal(lines.length, 2, 'one line per topic within the minute');
    assert.match(lines[0]!, /^topic http:\/\/example.org\/t: resourceTrigger\[0\]\.fhirPathCriteria could not be evaluated, so the change did not trigger: Expected single$/);
    assert.match(lines[1]!, /other: resourceTrigger could not/);
    now += 60_000;
    faults.record(url, new CriterionFault('resourceTrigger[0].queryCriteria.current', new Error('bad')));
    assert.equal(lines.length, 3);
    assert.match(lines[2]!, /queryCriteria\.current .*: bad \(and 4 more since the last report\)$/);
    assert.deepEqual(faults.of(url), {
      element: 'resourceTrigger[0].queryCriteria.current',
      message: 'bad',
      count: 6,
      first: '2026-01-01T00:00:00.000Z',
      last: '2026-01-01T00:01:05.000Z',
    });
    assert.deepEqual(faults.statusErrors(url), [
      { text: "the topic's resourceTrigger[0].queryCriteria.current could not be evaluated 6 times since 2026-01-01T00:00:00.000Z, last at 2026-01-01T00:01:05.000Z; those changes did not trigger: bad" },
    ]);
    faults.clear(url);
    assert.equal(faults.of(url), undefined);
    assert.deepEqual(faults.statusErrors(url), []);
  });
});
