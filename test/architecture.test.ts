import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The import rules of ARCHITECTURE.md, checked mechanically: which module may import which, and
 * which external packages stay in which box.
 */
const SRC = fileURLToPath(new URL('../src', import.meta.url));

/** module → modules it may import (besides itself). */
const ALLOWED: Record<string, string[]> = {
  fhir: [],
  search: ['fhir'],
  store: ['fhir', 'search'],
  auth: ['fhir', 'search'],
  subscriptions: ['fhir', 'search', 'store', 'auth'],
  interactions: ['fhir', 'search', 'store', 'subscriptions', 'auth'],
  operations: ['fhir', 'store', 'subscriptions', 'auth'],
  http: ['fhir', 'interactions', 'operations', 'subscriptions', 'auth'],
  client: [],
};

/** package → the only places (path prefixes under src/) that may import it. */
const PACKAGES: Record<string, string[]> = {
  fastify: ['http/'],
  'better-sqlite3': ['store/sqlite/'],
  pg: ['store/postgres/'],
  fhirpath: ['fhir/fhirpath.ts'],
  undici: ['subscriptions/channels/rest-hook/'],
  'fast-json-patch': ['interactions/crud.ts'],
  ws: ['http/websocket.ts', 'subscriptions/channels/websocket/'],
  jose: ['auth/'],
};

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

const moduleOf = (rel: string) => (rel.includes('/') ? rel.split('/')[0]! : rel);

describe('architecture', () => {
  const all = files(SRC).map((f) => ({ file: f, rel: relative(SRC, f) }));

  it('keeps the dependency direction of ARCHITECTURE.md', () => {
    const violations: string[] = [];
    for (const { file, rel } of all) {
      const from = moduleOf(rel);
      const allowed = ALLOWED[from];
      if (!allowed) continue; // main.ts, app.ts, config.ts: the composition root may import anything
      for (const spec of imports(file).filter((s) => s.startsWith('.'))) {
        const target = moduleOf(relative(SRC, resolve(dirname(file), spec)));
        if (target !== from && !allowed.includes(target)) violations.push(`${rel} imports ${spec}`);
      }
    }
    assert.deepEqual(violations, []);
  });

  it('names concrete stores only in the composition root', () => {
    const violations = all
      .filter(({ rel }) => !rel.startsWith('store/') && rel !== 'app.ts')
      .filter(({ file }) => imports(file).some((s) => /store\/(sqlite|postgres)\//.test(s)))
      .map(({ rel }) => rel);
    assert.deepEqual(violations, []);
  });

  it('keeps external packages in their boxes', () => {
    const violations: string[] = [];
    for (const { file, rel } of all) {
      for (const spec of imports(file)) {
        const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        const places = PACKAGES[pkg];
        if (places && !places.some((p) => rel.startsWith(p))) violations.push(`${rel} imports ${spec}`);
      }
    }
    assert.deepEqual(violations, []);
  });
});
