import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cruise, type ICruiseOptions, type IForbiddenRuleType, type IModule, type IViolation } from 'dependency-cruiser';
import ts from 'typescript';

/**
 * The import rules of ARCHITECTURE.md as dependency-cruiser rules, over the dependency graph of a
 * tree's `src/` (every import, `import type`, `export … from`, `import()`, side-effect import and
 * `require`), plus the one rule a graph cannot state: who touches `process`. Used by
 * test/architecture.test.ts on src/ and on the fixture tree that breaks each rule once.
 */

/**
 * Module → the modules it may import (besides itself). A module is a folder of src/ or a top-level
 * file; every file of src/ belongs to one of these.
 */
export const MAY_IMPORT: Record<string, string[]> = {
  'main.ts': ['config.ts', 'app.ts', 'heap-policy.ts'],
  'heap-policy.ts': [],
  'app.ts': ['config.ts', 'topics-folder.ts', 'http', 'interactions', 'operations', 'subscriptions', 'auth', 'store', 'search', 'fhir'],
  'config.ts': ['auth', 'http', 'subscriptions'],
  'topics-folder.ts': ['interactions', 'subscriptions', 'fhir'],
  http: ['interactions', 'operations', 'subscriptions', 'auth', 'fhir'],
  interactions: ['subscriptions', 'auth', 'store', 'search', 'fhir'],
  operations: ['subscriptions', 'auth', 'store', 'fhir'],
  subscriptions: ['auth', 'store', 'search', 'fhir'],
  auth: ['search', 'fhir'],
  store: ['search', 'fhir'],
  search: ['fhir'],
  fhir: [],
  client: [],
  // the console's page code (bundled into console.js) runs in browsers: the client library only
  console: ['client'],
};

/**
 * Folder with an entry file → that file, the only one other folders may import. `store/` is entered
 * through its interface; app.ts alone also opens a concrete store (ENTERED_BY_APP).
 */
export const ENTRIES: Record<string, string> = {
  interactions: 'interactions/index.ts',
  operations: 'operations/index.ts',
  subscriptions: 'subscriptions/index.ts',
  auth: 'auth/index.ts',
  store: 'store/store.ts',
  'fhir/versions': 'fhir/versions/index.ts',
  'fhir/definitions': 'fhir/definitions/index.ts',
};
const ENTERED_BY_APP = ['store/sqlite/index.ts', 'store/postgres/index.ts'];
const STORE_ENTRY = 'store/ is entered only through store/store.ts; app.ts alone also opens a concrete store (its index.ts)';

/** Package → the only places (folders or files of src/) that may import it. */
export const PACKAGES: Record<string, string[]> = {
  fastify: ['http'],
  '@fastify/compress': ['http'],
  '@fastify/cors': ['http'],
  'better-sqlite3': ['store/sqlite'],
  pg: ['store/postgres'],
  fhirpath: ['fhir/fhirpath.ts'],
  're2-wasm': ['fhir/regex.ts'],
  undici: ['subscriptions/channels/rest-hook'],
  'fast-json-patch': ['interactions/crud.ts'],
  ws: ['http/websocket.ts'],
  jose: ['auth'],
};

/** The process entries: the server's (main.ts) and `herald listen`'s (client/cli.ts). */
export const PROCESS_ENTRIES = ['main.ts', 'client/cli.ts'];
const PROCESS_RULE = `only ${PROCESS_ENTRIES.join(' and ')} read arguments or environment, handle process events or exit (process.*, node:process)`;
/** What only a process entry may touch: arguments, environment, signals and process events, exit. */
const PROCESS_MEMBERS = /^(argv|execArgv|env|exit|exitCode|abort|kill|chdir|on|once|off|addListener|prependListener|prependOnceListener|removeListener|removeAllListeners)$/;

/**
 * One clock (ARCHITECTURE.md): the server reads the time only from the clock app.ts makes and
 * hands on (`now`), and measures elapsed time with performance.now(). A read of the system clock
 * (`Date.now()`, `Date.now` handed on, `new Date()` without arguments, `Date()`) is allowed only
 * here: a file with the exact number of reads it may make, or a folder (the code of other
 * processes). A counted file with more reads, or fewer (a stale entry), breaks the rule too.
 */
export const CLOCK_READS_ALLOWED: Record<string, { reads?: number; why: string }> = {
  'app.ts': { reads: 1, why: 'the composition root makes the one clock of the server' },
  'store/sqlite/index.ts': { reads: 1, why: "the clock of a store opened without one (tests, tools); app.ts passes its own" },
  'store/postgres/index.ts': { reads: 1, why: "the clock of a store opened without one (tests, tools); app.ts passes its own" },
  'store/sqlite/connection.ts': { reads: 1, why: "a migration's applied_at: when this database's schema changed, bookkeeping no client sees" },
  'store/postgres/schema.ts': { reads: 1, why: "a migration's applied_at: when this database's schema changed, bookkeeping no client sees" },
  client: { why: 'the client library and `herald listen`: they run in the listener\'s process or a browser, not in the server' },
  'console/app': { why: 'the console page code runs in the browser' },
};
const CLOCK_RULE = 'the server reads the time only from the injected clock (`now`) and elapsed time from performance.now(): no Date.now() or new Date() outside CLOCK_READS_ALLOWED';

/**
 * Cycles of runtime imports that exist on purpose (mutual recursion): a Bundle entry is routed like
 * a request, and a FHIRPath `where()` test compiles paths. A cycle wholly inside one group passes.
 * Type-only imports are erased (verbatimModuleSyntax), so they make no cycle.
 */
export const KNOWN_CYCLES = [
  ['interactions/router.ts', 'interactions/bundle.ts'],
  ['search/extract/plan.ts', 'search/extract/criteria.ts', 'search/extract/run.ts'],
];

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A module, folder or file of src/ as a path pattern. */
const at = (p: string) => (p.endsWith('.ts') ? `^src/${esc(p)}$` : `^src/${esc(p)}/`);
/** A package, installed (node_modules/…, also from a fixture tree) or not (its bare name). */
const pkg = (name: string) => `(^|/node_modules/)${esc(name)}(/|$)`;

export const RULES: IForbiddenRuleType[] = [
  {
    name: 'in-a-module',
    comment: 'every file of src/ belongs to a module of the import rules table',
    from: { path: '^src/', pathNot: Object.keys(MAY_IMPORT).map(at) },
    to: {},
  },
  ...Object.entries(MAY_IMPORT).map(([module, allowed]) => ({
    name: `direction:${module}`,
    comment: `${module} may import ${allowed.join(', ') || 'nothing else in src/'}`,
    from: { path: at(module) },
    to: { path: '^src/', pathNot: [module, ...allowed].map(at) },
  })),
  ...Object.entries(ENTRIES).map(([folder, entry]) => ({
    name: `entry:${folder}`,
    comment: folder === 'store' ? STORE_ENTRY : `${folder}/ is entered only through ${entry}`,
    from: { pathNot: [at(folder), ...(folder === 'store' ? [at('app.ts')] : [])] },
    to: { path: at(folder), pathNot: at(entry) },
  })),
  {
    name: 'entry:store',
    comment: STORE_ENTRY,
    from: { path: at('app.ts') },
    to: { path: at('store'), pathNot: [ENTRIES.store!, ...ENTERED_BY_APP].map(at) },
  },
  ...Object.entries(PACKAGES).map(([name, places]) => ({
    name: `package:${name}`,
    comment: `${name} only in ${places.join(', ')}`,
    from: { pathNot: places.map(at) },
    to: { path: pkg(name) },
  })),
  {
    name: 'client-in-browsers',
    comment: 'the client library (not its command line, client/cli.ts and client/cli-*.ts) imports no Node built-ins and no packages',
    from: { path: at('client'), pathNot: '^src/client/cli[.-]' },
    to: { pathNot: '^src/' },
  },
  {
    name: 'console-in-browsers',
    comment: 'the console page code imports the client library only: no Node built-ins, no packages',
    from: { path: at('console') },
    to: { pathNot: [at('console'), at('client')] },
  },
  {
    name: 'process-entry',
    comment: PROCESS_RULE,
    from: { pathNot: PROCESS_ENTRIES.map(at) },
    to: { dependencyTypes: ['core'], path: '^(node:)?process$' },
  },
  {
    name: 'resolvable',
    comment: 'every relative import resolves to a file, so no edge escapes the rules',
    from: {},
    to: { couldNotResolve: true, path: '^\\.' },
  },
];

/** Every rule's name and what it says. */
export const RULE_NAMES = new Map<string, string>([
  ...RULES.map((r): [string, string] => [r.name!, r.comment!]),
  ['no-cycle', 'no cycle of runtime imports (type-only imports are erased), except KNOWN_CYCLES'],
  ['one-clock', CLOCK_RULE],
]);

/** All rules over the tree at root: its src/ is checked, paths are reported as `src/…`. */
export async function check(root: string): Promise<Violation[]> {
  const { modules, violations } = await cruiseTree(root);
  const files = modules.map((m) => m.source).filter((f) => f.startsWith('src/'));
  return [...violations, ...checkCycles(modules), ...checkProcess(root, files), ...checkClock(root, files)];
}

/** A broken rule and where: `from → to`, a cycle's files, or a file and line. */
export type Violation = { rule: string; line: string };

/** The dependency graph of `<root>/src` and its RULES violations. */
async function cruiseTree(root: string): Promise<{ modules: IModule[]; violations: Violation[] }> {
  const options: ICruiseOptions = {
    baseDir: root,
    exclude: { path: '\\.test\\.ts$' },
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    detectProcessBuiltinModuleCalls: true,
    validate: true,
    ruleSet: { forbidden: RULES.map((r) => ({ severity: 'error', ...r })) },
  };
  const { output } = await cruise(['src'], options);
  if (typeof output === 'string') throw new Error('dependency-cruiser answered text');
  // a file of src/ by its path, anything else (package, built-in, unresolved) as the import names it
  const target = (v: IViolation) => (v.to.startsWith('src/') ? v.to : (v.unresolvedTo ?? v.to));
  const violations = (output.summary.violations as IViolation[]).map((v) => ({ rule: v.rule.name, line: `${v.from} → ${target(v)}` }));
  return { modules: output.modules, violations };
}

/**
 * Cycles of runtime imports (every import but `import type` and `typeof import()`), one line per
 * strongly connected component that is not wholly inside a group of KNOWN_CYCLES.
 */
function checkCycles(modules: IModule[]): Violation[] {
  const erased = (types: string[]) => types.includes('type-only') || types.includes('type-import');
  const edges = new Map(
    modules.map((m) => [m.source, m.dependencies.filter((d) => d.resolved.startsWith('src/') && !erased(d.dependencyTypes)).map((d) => d.resolved)]),
  );
  // Tarjan's strongly connected components
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do component.push((w = stack.pop()!));
      while (w !== v);
      components.push(component.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  const known = KNOWN_CYCLES.map((group) => group.map((f) => `src/${f}`));
  return components
    .filter((c) => c.length > 1 && !known.some((group) => c.every((f) => group.includes(f))))
    .map((c) => ({ rule: 'no-cycle', line: c.join(' ⇄ ') }));
}

/**
 * Uses of `process` outside PROCESS_ENTRIES that read arguments or environment, handle process
 * events or end the process: `process.env…`, `process['env']`, `const { env } = process`, or
 * `process` handed on whole. Other members (emitWarning, nextTick, pid, …) are free.
 */
function checkProcess(root: string, files: string[]): Violation[] {
  const violations: Violation[] = [];
  for (const rel of files.filter((f) => !PROCESS_ENTRIES.some((e) => f === `src/${e}`))) {
    const source = ts.createSourceFile(rel, readFileSync(join(root, rel), 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      const use = ts.isIdentifier(node) && node.text === 'process' ? processUse(node) : undefined;
      if (use) {
        const { line } = source.getLineAndCharacterOfPosition(node.getStart());
        violations.push({ rule: 'process-entry', line: `${rel}:${line + 1} ${use.getText().slice(0, 60)}` });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return violations;
}

/** The expression around a use of the global `process` that only a process entry may make. */
function processUse(node: ts.Identifier): ts.Node | undefined {
  let use: ts.Node = node;
  if (ts.isPropertyAccessExpression(node.parent) && node.parent.name === node) {
    const owner = node.parent.expression;
    if (!ts.isIdentifier(owner) || owner.text !== 'globalThis') return undefined; // some x.process
    use = node.parent; // globalThis.process
  }
  const parent = use.parent;
  if (ts.isPropertyAccessExpression(parent)) return PROCESS_MEMBERS.test(parent.name.text) ? parent : undefined;
  if (ts.isTypeQueryNode(parent)) return undefined; // typeof process, a type
  // a declaration, property or import named `process` is not a use of the global
  const named = ts.isPropertyAssignment(parent) || ts.isVariableDeclaration(parent) || ts.isParameter(parent) || ts.isBindingElement(parent) || ts.isPropertySignature(parent);
  if ((named && parent.name === node) || ts.isImportSpecifier(parent) || ts.isImportClause(parent)) return undefined;
  return parent; // process['env'], const { env } = process, process handed on whole
}

/**
 * Reads of the system clock in src/ outside CLOCK_READS_ALLOWED: one violation per read in a file
 * that may make none, and one per counted file whose number of reads is not the one allowed.
 */
function checkClock(root: string, files: string[]): Violation[] {
  const violations: Violation[] = [];
  const counted = new Map(Object.entries(CLOCK_READS_ALLOWED).filter(([, a]) => a.reads !== undefined).map(([f, a]) => [`src/${f}`, { allowed: a.reads!, found: [] as string[] }]));
  const folders = Object.entries(CLOCK_READS_ALLOWED).filter(([f, a]) => a.reads === undefined && !f.endsWith('.ts')).map(([f]) => `src/${f}/`);
  for (const rel of files.filter((f) => f.endsWith('.ts') && !folders.some((d) => f.startsWith(d)))) {
    const source = ts.createSourceFile(rel, readFileSync(join(root, rel), 'utf8'), ts.ScriptTarget.Latest, true);
    const reads: string[] = [];
    const visit = (node: ts.Node): void => {
      const read = clockRead(node);
      if (read) reads.push(`${rel}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1} ${read}`);
      ts.forEachChild(node, visit);
    };
    visit(source);
    const count = counted.get(rel);
    if (count) count.found = reads;
    else violations.push(...reads.map((line) => ({ rule: 'one-clock', line })));
  }
  for (const [rel, { allowed, found }] of counted) {
    if (found.length === allowed) continue;
    const where = found.length > 0 ? ` (${found.map((f) => f.slice(rel.length)).join(', ')})` : '';
    violations.push({ rule: 'one-clock', line: `${rel} may read the clock ${allowed} time(s), reads it ${found.length}${where}` });
  }
  return violations;
}

/** `Date` or `globalThis.Date`. */
function isDate(node: ts.Node): boolean {
  if (ts.isIdentifier(node)) return node.text === 'Date';
  return ts.isPropertyAccessExpression(node) && node.name.text === 'Date' && ts.isIdentifier(node.expression) && node.expression.text === 'globalThis';
}

/** What a node reads of the system clock: `Date.now()`, `Date.now` (handed on), `new Date()`, `Date()`. */
function clockRead(node: ts.Node): string | undefined {
  const member =
    (ts.isPropertyAccessExpression(node) && node.name.text === 'now' && isDate(node.expression)) ||
    (ts.isElementAccessExpression(node) && ts.isStringLiteralLike(node.argumentExpression) && node.argumentExpression.text === 'now' && isDate(node.expression));
  if (member) return ts.isCallExpression(node.parent) && node.parent.expression === node ? 'Date.now()' : 'Date.now';
  if (ts.isBindingElement(node) && (node.propertyName ?? node.name).getText() === 'now' && ts.isVariableDeclaration(node.parent.parent) && node.parent.parent.initializer && isDate(node.parent.parent.initializer)) {
    return '{ now } = Date';
  }
  if (ts.isNewExpression(node) && isDate(node.expression) && !node.arguments?.length) return 'new Date()';
  if (ts.isCallExpression(node) && isDate(node.expression)) return 'Date()';
  return undefined;
}
