import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_WRITTEN, keepWrittenNumbers, parseJson, storedResource, stringifyJson, writtenNumber } from './json.ts';

describe('JSON with decimals as written (datatypes.html#decimal)', () => {
  it('gives back what a double forgets: trailing zeros, exponents, negative zero, digits past 17', () => {
    for (const n of ['1.50', '1.0', '0.010', '-0', '-0.0', '1e2', '1.5E-3', '0.0000001', '12345678901234567890', '3.14159265358979323846', '100.000']) {
      const text = `{"a":${n},"b":[${n},{"c":${n}}]}`;
      assert.equal(stringifyJson(parseJson(text)), text, n);
    }
  });

  it('leaves numbers a double gives back, and every other text, to JSON.parse and JSON.stringify', () => {
    for (const text of ['{"a":1.5,"b":[0,10,100,-3],"c":"1.50","d":"2020-01-01T10:00:00.000Z"}', '{"a":{"b":"x:1.0,"}}', '[]', '"1.50"', '1.50', 'null']) {
      const parsed = parseJson(text);
      assert.equal(JSON.stringify(parsed), JSON.stringify(JSON.parse(text)));
      assert.equal(stringifyJson(parsed), JSON.stringify(parsed), text);
    }
  });

  it('is plain JSON to everything else: keys, spread, deep equality', () => {
    const r = parseJson('{"resourceType":"Observation","valueQuantity":{"value":1.50,"unit":"g"},"x":2.0}') as Record<string, any>;
    assert.deepEqual(Object.keys(r), ['resourceType', 'valueQuantity', 'x']);
    assert.equal(JSON.stringify(r), '{"resourceType":"Observation","valueQuantity":{"value":1.5,"unit":"g"},"x":2}');
    assert.equal(writtenNumber(r.valueQuantity, 'value'), '1.50');
    // A copy by spread (stamp, { ...r, id }) keeps what its members were written as.
    const stamped = { resourceType: r.resourceType, id: 'o', ...r };
    assert.equal(stringifyJson(stamped), '{"resourceType":"Observation","id":"o","valueQuantity":{"value":1.50,"unit":"g"},"x":2.0}');
  });

  it('writes a member changed since (a patch, a server) as its new value', () => {
    const r = parseJson('{"a":1.50,"b":{"c":2.0}}') as Record<string, any>;
    r.a = 3;
    r.b.c = 2;
    assert.equal(stringifyJson(r), '{"a":3,"b":{"c":2.0}}');
  });

  it('a Bundle built around parsed resources holds what they hold, nested Bundles too', () => {
    const r = parseJson('{"resourceType":"Observation","valueDecimal":0.10}');
    const inner = { resourceType: 'Bundle', entry: [{ resource: r }] };
    assert.equal(stringifyJson(inner), '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","valueDecimal":0.10}}]}');
    const outer = { resourceType: 'Bundle', entry: [{ response: {} }, { resource: inner }] };
    assert.equal(stringifyJson(outer), `{"resourceType":"Bundle","entry":[{"response":{}},{"resource":${stringifyJson(inner)}}]}`);
  });

  it('a copy made member by member keeps the forms when asked to', () => {
    const r = parseJson('{"a":1.50,"b":"x"}') as Record<string, unknown>;
    const copy: Record<string, unknown> = { a: r.a };
    keepWrittenNumbers(r, copy);
    assert.equal(stringifyJson(copy), '{"a":1.50}');
  });

  it('keeps nothing when keys make JSON.parse visit numbers out of order, or a key repeats', () => {
    for (const text of ['{"b":1.50,"1":2.0}', '{"a":1.50,"a":2.0}']) {
      const parsed = parseJson(text);
      assert.equal(stringifyJson(parsed), JSON.stringify(JSON.parse(text)), text);
    }
  });

  it('a string that looks like the marker stays a string', () => {
    const text = '{"a":"\\u0001herald-number-0-1.5","b":1.50}';
    assert.equal(stringifyJson(parseJson(text)), text);
    assert.equal((parseJson(stringifyJson(parseJson(text))) as { a: string }).a, '\u0001herald-number-0-1.5');
  });

  it('round-trips any compact JSON text, numbers written in any valid form', () => {
    const digits = (min: number, max: number) => fc.array(fc.constantFrom(...'0123456789'), { minLength: min, maxLength: max }).map((d) => d.join(''));
    const number = fc
      .tuple(fc.boolean(), fc.oneof(fc.constant('0'), fc.tuple(fc.constantFrom(...'123456789'), digits(0, 22)).map(([a, b]) => a + b)), fc.option(digits(1, 22)), fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), digits(1, 2))))
      .map(([neg, int, frac, exp]) => `${neg ? '-' : ''}${int}${frac === null ? '' : `.${frac}`}${exp === null ? '' : exp.join('')}`)
      .filter((n) => Number.isFinite(Number(n)));
    const value: fc.Arbitrary<string> = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, number, fc.string().map((s) => JSON.stringify(s)), fc.constantFrom('true', 'false', 'null'), tie('o'), tie('a')),
      o: fc.uniqueArray(fc.tuple(fc.stringMatching(/^[a-z_]{1,6}$/), tie('v')), { maxLength: 4, selector: ([k]) => k }).map((m) => `{${m.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
      a: fc.array(tie('v'), { maxLength: 4 }).map((a) => `[${a.join(',')}]`),
    })).o as fc.Arbitrary<string>;
    fc.assert(
      fc.property(value, (text) => {
        const parsed = parseJson(text);
        assert.equal(JSON.stringify(parsed), JSON.stringify(JSON.parse(text)));
        assert.equal(stringifyJson(parsed), text);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('JSON with decimals as written: bounds', () => {
  it(`keeps at most ${MAX_WRITTEN.toLocaleString('en-US')} numbers of one text as written; past that, all are doubles`, () => {
    const text = (n: number) => `{"a":[${Array.from({ length: n }, () => '1.50').join(',')}]}`;
    assert.equal(stringifyJson(parseJson(text(MAX_WRITTEN))), text(MAX_WRITTEN));
    const over = parseJson(text(MAX_WRITTEN + 1));
    assert.equal(writtenNumber((over as { a: number[] }).a, '0'), undefined);
    assert.equal(stringifyJson(over), JSON.stringify(JSON.parse(text(MAX_WRITTEN + 1))));
  });

  it('a text nested deeper than the stack is what JSON.parse gives', () => {
    const depth = 20_000;
    const text = `${'['.repeat(depth)}1.50${']'.repeat(depth)}`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return; // JSON.parse itself refuses it on this stack: nothing of ours to test
    }
    const ours = parseJson(text);
    assert.ok(Array.isArray(ours) && Array.isArray(parsed));
    let innermost = ours as unknown[];
    while (Array.isArray(innermost[0])) innermost = innermost[0] as unknown[];
    assert.equal(innermost[0], 1.5);
    assert.equal(writtenNumber(innermost, '0'), undefined);
  });
});

describe('JSON with decimals as written: keys and edges', () => {
  it('strict (request bodies): a key repeated in one object is a 400 naming it', () => {
    for (const [text, key] of [['{"a":1,"b":{"c":2,"c":3}}', 'c'], ['{"a":"x","b":1.50,"a":1.500}', 'a'], ['{"a" :1, "a" : 1}', 'a'], ['[{"k":1},{"k":2},{"x":{"k":1,"k":1}}]', 'k']] as const) {
      assert.throws(() => parseJson(text, { strict: true }), (err: Error & { status?: number }) => err.status === 400 && err.message.includes(`'${key}'`), text);
    }
    // The same key in sibling objects, and a key-like string value, are fine.
    assert.doesNotThrow(() => parseJson('[{"k":1},{"k":2}]', { strict: true }));
    assert.doesNotThrow(() => parseJson('{"a":"b:","b":"a"}', { strict: true }));
  });

  it('not strict (stored texts): a repeated key keeps no form rather than a wrong one', () => {
    const parsed = parseJson('{"a":"x","b":1.50,"a":1.500}');
    assert.equal(stringifyJson(parsed), '{"a":1.5,"b":1.5}');
    const zero = parseJson('{"a":null,"b":0,"a":-0}');
    assert.equal(stringifyJson(zero), JSON.stringify(JSON.parse('{"a":null,"b":0,"a":-0}')));
  });

  it('integers past 2^53 keep their digits; -0 set to 0 is 0', () => {
    for (const n of ['9007199254740993', '-9007199254740993', '1234567890123456']) {
      assert.equal(stringifyJson(parseJson(`{"v":${n}}`)), `{"v":${n}}`, n);
    }
    const r = parseJson('{"a":-0}') as { a: number };
    r.a = 0;
    assert.equal(stringifyJson(r), '{"a":0}');
  });
});

describe('JSON with decimals as written: strings', () => {
  it('skips strings whatever they end with: escaped quotes, runs of backslashes', () => {
    for (const text of ['{"a":"x\\\\","b":1.50}', '{"a":"\\"","b":1.50}', '{"a":"\\\\\\"q\\\\","b":[1.50,"\\\\"]}', '{"a\\"":1.50}', '{"1.50":"2.0","b":3.0}']) {
      assert.equal(stringifyJson(parseJson(text, { strict: true })), text, text);
    }
  });
});

describe('stored resources spliced into answers', () => {
  it('writes a stand-in as its stored text, in Bundles nested in Bundles, beside written numbers', () => {
    const stored = '{"resourceType":"Observation","id":"o1","valueQuantity":{"value":1.50}}';
    const r = storedResource(stored, { resourceType: 'Observation', id: 'o1' });
    assert.equal(r.resourceType, 'Observation');
    assert.equal(r.id, 'o1');
    const page = { resourceType: 'Bundle', type: 'searchset', entry: [{ fullUrl: 'x/o1', resource: r }, { resource: parseJson('{"resourceType":"OperationOutcome","n":2.0}') }] };
    const expected = `{"resourceType":"Bundle","type":"searchset","entry":[{"fullUrl":"x/o1","resource":${stored}},{"resource":{"resourceType":"OperationOutcome","n":2.0}}]}`;
    assert.equal(stringifyJson(page), expected);
    const batch = { resourceType: 'Bundle', type: 'batch-response', entry: [{ resource: page, response: { status: '200 OK' } }] };
    assert.equal(stringifyJson(batch), `{"resourceType":"Bundle","type":"batch-response","entry":[{"resource":${expected},"response":{"status":"200 OK"}}]}`);
    assert.deepEqual(JSON.parse(stringifyJson(batch)), { ...batch, entry: [{ resource: JSON.parse(expected), response: { status: '200 OK' } }] });
  });
});
