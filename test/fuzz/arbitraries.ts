import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import type { Version } from '../helpers/subscriptions.ts';

/**
 * Generators of hostile input: odd strings and ids, values of the wrong JSON type, huge and deep
 * values, mutations of valid resources (the FHIR packages' examples and the IG's), malformed JSON
 * text, wrong content types. Everything shrinks: a mutation is a list of small operations.
 */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const HOSTILE = [
  '', ' ', '.', '..', '%', '%00', '%2F', '%E0%A4%A', '/', '\\', '\u0000', '\u0007', '\uFFFF', '\uD800', '💥', 'é', 'Ω≈ç√', '\u202E',
  'null', 'undefined', 'true', '0', '-1', '1e400', 'NaN', 'Infinity', '9'.repeat(40), '[]', '{}', "'", '"', '<', '&', '|', ',', '\\,', '$', '?', '#', ':', '*',
  "' OR 1=1 --", '%s%s%s', '${x}', '../../etc/passwd', 'a'.repeat(65), 'x'.repeat(5000),
];

/** Strings a parser may trip on: unicode of every kind, control characters, escapes, length. */
export const oddString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...HOSTILE),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.stringMatching(/^[A-Za-z0-9\-.]{1,64}$/),
);

/** Ids: valid ones, ids of the wrong length or alphabet, unicode. */
export const oddId: fc.Arbitrary<string> = fc.oneof(fc.stringMatching(/^[A-Za-z0-9\-.]{1,64}$/), oddString);

/** Percent-encodes like a client would (a lone surrogate, which cannot be encoded, becomes U+FFFD). */
export function encoded(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, '\uFFFD'));
  }
}

/** A path segment or query value: encoded odd text, or raw bytes a client should not send. */
export const segment: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: oddId.map(encoded) },
  { weight: 1, arbitrary: fc.constantFrom('%E0%A4%A', '%', '%zz', '%2e%2e', '..', '%C0%AF', '%FF%FE', '%00', '%ED%A0%80') },
);

/** Any JSON value, of any type. */
export const anyJson: fc.Arbitrary<Json> = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>;

/** A big or deep value: long strings (past FHIR's 1 MiB string limit too), long arrays, deep nesting. */
export const hugeOrDeep: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom(10_000, 300_000, 1_100_000).map((n) => 'x'.repeat(n)),
  fc.constantFrom(1_000, 20_000).map((n) => Array.from({ length: n }, (_, i) => i)),
  fc.record({ depth: fc.integer({ min: 10, max: 500 }), kind: fc.constantFrom('array', 'object', 'extension') }).map(({ depth, kind }) => {
    let v: Json = 'leaf';
    for (let i = 0; i < depth; i++) v = kind === 'array' ? [v] : kind === 'object' ? { a: v } : { url: 'http://example.org/x', extension: [v] };
    return v;
  }),
);

/**
 * JSON objects whose keys shadow what JavaScript looks up on every object: `String(x)` and
 * `${x}` throw a TypeError on `{"toString":1}` (its own toString is not a function), and a
 * `__proto__` key is an own property after JSON.parse. Code that prints a value it has not yet
 * checked to be a string meets them.
 */
export const prototypeKeys: fc.Arbitrary<Json> = fc.constantFrom<Json>(
  { toString: 1 },
  { toString: null, valueOf: null },
  { valueOf: 'x', toString: {} },
  JSON.parse('{"__proto__":{"toString":1}}') as Json,
  { constructor: 1, hasOwnProperty: 1 },
);

/** A value of some JSON type, likely not the one the element needs. */
export const wrongValue: fc.Arbitrary<Json> = fc.oneof(
  { weight: 6, arbitrary: fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), oddString, fc.constant<Json>([]), fc.constant<Json>({}), anyJson) },
  { weight: 1, arbitrary: prototypeKeys },
  { weight: 1, arbitrary: hugeOrDeep },
);

type Step = string | number;

/** Every path in a JSON tree (capped, so huge examples stay cheap). */
function paths(v: Json, at: Step[] = [], out: Step[][] = []): Step[][] {
  if (out.length > 2000) return out;
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

export interface Mutation {
  kind: 'set' | 'delete' | 'retype' | 'add' | 'wrap' | 'unwrap';
  at: number;
  value: Json;
  key: string;
}

const KEYS = ['id', 'resourceType', 'extension', 'modifierExtension', 'contained', 'meta', 'text', 'status', 'value', 'valueString', 'reference', '_status', 'fhir_comments', '', '💥'];

export const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('set', 'delete', 'retype', 'add', 'wrap', 'unwrap'),
  at: fc.nat(),
  value: wrongValue,
  key: fc.oneof(fc.constantFrom(...KEYS), oddString),
});

/**
 * The deepest tree a mutation may make. JSON.stringify and structuredClone recurse, and under
 * fast-check's own frames they overflow the stack from about 1,900 levels: a deep value put deep
 * into another (or a Bundle's mutated entries mutated again) broke the generator, not the server.
 * hugeOrDeep's values (up to 1,001 levels) and this bound stay far past the server's limits (64).
 */
const MAX_TREE_DEPTH = 1200;

/** Levels of a JSON tree (a scalar is 1), without recursion. */
function depthOf(v: Json): number {
  let max = 0;
  const stack: [Json, number][] = [[v, 1]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    max = Math.max(max, d);
    if (x && typeof x === 'object') for (const c of Object.values(x)) stack.push([c, d + 1]);
  }
  return max;
}

/** Applies mutations to a copy of `value` (paths are picked modulo the tree's size as it is then). */
export function mutate<T extends Json>(value: T, mutations: readonly Mutation[]): Json {
  let root: Json = structuredClone(value);
  for (const mutation of mutations) {
    const all = paths(root);
    const path = all[mutation.at % all.length]!;
    // A mutation that would make the tree deeper than MAX_TREE_DEPTH is left out.
    const deepest = mutation.kind === 'wrap' ? depthOf(root) + 1 : mutation.kind === 'set' || mutation.kind === 'add' ? path.length + 2 + depthOf(mutation.value) : 0;
    if (deepest > MAX_TREE_DEPTH) continue;
    // A copy: generated values are shared between runs and must never become part of a tree.
    const m = { ...mutation, value: structuredClone(mutation.value) };
    const parent = path.length ? (get(root, path.slice(0, -1)) as any) : undefined;
    const last = path[path.length - 1];
    const current = get(root, path);
    const replace = (next: Json | undefined) => {
      if (!parent) return void (root = next ?? null);
      if (next === undefined) {
        if (Array.isArray(parent)) parent.splice(last as number, 1);
        else delete parent[last!];
      } else parent[last!] = next;
    };
    switch (m.kind) {
      case 'set':
        replace(m.value);
        break;
      case 'delete':
        replace(undefined);
        break;
      case 'retype':
        replace(retype(current));
        break;
      case 'add':
        if (current && typeof current === 'object' && !Array.isArray(current)) (current as Record<string, Json>)[m.key] = m.value;
        else if (Array.isArray(current)) current.push(m.value);
        else replace({ [m.key]: m.value });
        break;
      case 'wrap':
        replace([current]);
        break;
      case 'unwrap':
        replace(Array.isArray(current) ? (current[0] ?? null) : current && typeof current === 'object' ? (Object.values(current)[0] ?? null) : current);
        break;
    }
  }
  return root;
}

function get(v: Json, path: Step[]): Json {
  let at: any = v;
  for (const s of path) at = at?.[s];
  return at as Json;
}

/** The same information in another JSON type (the classic client mistake). */
function retype(v: Json): Json {
  if (typeof v === 'string') return /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v === 'true' || v === 'false' ? v === 'true' : [v];
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v[0] ?? {};
  if (v && typeof v === 'object') return [v];
  return 'null';
}

/** Nesting deeper than any stack (as text: JSON.stringify could not build it), inside a resource or bare. */
export const deepText: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(1_000, 10_000, 100_000), fc.constantFrom('array', 'object', 'extension'))
  .map(([n, kind]) =>
    kind === 'array'
      ? `${'['.repeat(n)}${']'.repeat(n)}`
      : kind === 'object'
        ? `{"resourceType":"Patient","active":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`
        : `{"resourceType":"Patient","extension":[${'{"url":"http://e.org/x","extension":['.repeat(n)}${']}'.repeat(n)}]}`,
  );

/** JSON text made malformed: cut short, a character replaced or inserted, a trailing comma, a BOM. */
export const malformed = (text: string): fc.Arbitrary<string> =>
  fc.oneof(
    fc.nat({ max: Math.max(0, text.length - 1) }).map((n) => text.slice(0, n)),
    fc.tuple(fc.nat({ max: text.length }), fc.constantFrom('"', '{', '}', '[', ']', ',', ':', '\\', '\u0000', 'x', '\n')).map(([n, c]) => text.slice(0, n) + c + text.slice(n)),
    fc.tuple(fc.nat({ max: Math.max(0, text.length - 1) }), fc.constantFrom('"', '}', ']', ',', '\\', '\u0001')).map(([n, c]) => text.slice(0, n) + c + text.slice(n + 1)),
    fc.constant(text.replace(/}$/, ',}')),
    fc.constant(`\uFEFF${text}`),
    fc.constant(`${text}${text}`),
    deepText,
    fc.constantFrom('', 'null', '[]', '"text"', '42', 'true', '{', 'NaN', '{"resourceType":', "{'resourceType':'Patient'}", '<Patient/>'),
  );

/** Content types: the right ones, near misses, and wrong ones. */
export const contentType: fc.Arbitrary<string | undefined> = fc.constantFrom(
  undefined,
  'application/fhir+json',
  'application/json',
  'application/fhir+json; charset=utf-8',
  'application/fhir+json; fhirVersion=4.0',
  'application/fhir+json; fhirVersion=9.9; charset=latin1',
  'application/json-patch+json',
  'application/fhir+xml',
  'application/xml',
  'text/plain',
  'text/html',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  '*/*',
  'application/*',
  ';;;',
  'application/fhir+json;;charset=',
  'APPLICATION/FHIR+JSON',
);

export const accept: fc.Arbitrary<string | undefined> = fc.constantFrom(
  undefined,
  'application/fhir+json',
  'application/json',
  '*/*',
  'application/fhir+xml',
  'text/html',
  'application/fhir+json;q=0, */*;q=0.1',
  'image/png',
  '',
  ',,,',
);

const SPEC = fileURLToPath(new URL('../fixtures/spec/examples', import.meta.url));
const PACKAGES = fileURLToPath(new URL('../../node_modules', import.meta.url));
const PACKAGE: Record<Version, string> = { R4: 'hl7.fhir.r4.examples', R4B: 'hl7.fhir.r4b.examples', R5: 'hl7.fhir.r5.examples' };

/** Example files of a version (the official package and the IG's), up to 100 kB each. */
const exampleFiles = new Map<Version, string[]>();
export function examples(v: Version): string[] {
  let files = exampleFiles.get(v);
  if (!files) {
    const dirs = [join(PACKAGES, PACKAGE[v]), join(SPEC, v.toLowerCase())];
    files = dirs.flatMap((d) =>
      readdirSync(d)
        .filter((f) => /^[A-Z][A-Za-z]+-.*\.json$/.test(f))
        .map((f) => join(d, f))
        .filter((f) => statSync(f).size < 100_000),
    );
    exampleFiles.set(v, files);
  }
  return files;
}

const parsed = new Map<string, Json>();
export function example(file: string): Json {
  let v = parsed.get(file);
  if (v === undefined) {
    v = JSON.parse(readFileSync(file, 'utf8').replace(/^\uFEFF/, '')) as Json;
    if (parsed.size > 500) parsed.clear();
    parsed.set(file, v);
  }
  return structuredClone(v);
}

/** A valid example resource of a version, picked by index (so it shrinks towards the first files). */
export const exampleOf = (v: Version): fc.Arbitrary<{ file: string; resource: Record<string, Json> }> =>
  fc.nat().map((i) => {
    const files = examples(v);
    const file = files[i % files.length]!;
    return { file, resource: example(file) as Record<string, Json> };
  });
