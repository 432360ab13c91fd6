/**
 * A parser for FHIRPath as SearchParameter expressions use it. The parameters' expressions are
 * unions of paths with a handful of functions (`where`, `as`/`ofType`, `extension`, `first`,
 * `exists`, `resolve() is X`); parsing them into a small AST lets plan.ts turn each union branch
 * into a typed walker over plain JSON, and print the branches it cannot turn back into FHIRPath
 * for the fallback (fhir/fhirpath.ts). The grammar is FHIRPath's, precedence included, minus
 * date/quantity literals and lambdas beyond what `where` needs; anything else is a ParseError,
 * and the caller falls back to fhirpath.js for the whole expression.
 */

export type Ast =
  | { kind: 'ident'; name: string }
  | { kind: 'env'; name: string }
  | { kind: 'literal'; value: string | number | boolean }
  | { kind: 'member'; target: Ast; name: string }
  | { kind: 'call'; target: Ast | undefined; name: string; args: Ast[] }
  | { kind: 'index'; target: Ast; index: Ast }
  | { kind: 'type'; op: 'as' | 'is'; target: Ast; type: string }
  | { kind: 'binary'; op: string; left: Ast; right: Ast }
  | { kind: 'union'; items: Ast[] };

export class ParseError extends Error {}

type Token = { t: 'id' | 'env' | 'str' | 'num' | 'op'; v: string };

const TOKEN = /\s*(?:([A-Za-z_][A-Za-z0-9_]*)|`([^`]*)`|%([A-Za-z_][A-Za-z0-9_]*)|'((?:[^'\\]|\\.)*)'|(\d+(?:\.\d+)?)|(!=|!~|<=|>=|[.()[\]|,=~<>+\-*/&]))/y;

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < source.length) {
    if (/^\s*$/.test(source.slice(TOKEN.lastIndex))) break;
    const m = TOKEN.exec(source);
    if (m === null) throw new ParseError(`Unexpected input at ${TOKEN.lastIndex}: ${source.slice(TOKEN.lastIndex, TOKEN.lastIndex + 10)}`);
    if (m[1] !== undefined) tokens.push({ t: 'id', v: m[1] });
    else if (m[2] !== undefined) tokens.push({ t: 'id', v: m[2] });
    else if (m[3] !== undefined) tokens.push({ t: 'env', v: m[3] });
    else if (m[4] !== undefined) tokens.push({ t: 'str', v: m[4].replace(/\\(.)/g, (_s, c: string) => ({ n: '\n', t: '\t', r: '\r' })[c] ?? c) });
    else if (m[5] !== undefined) tokens.push({ t: 'num', v: m[5] });
    else tokens.push({ t: 'op', v: m[6]! });
  }
  return tokens;
}

/** Binary operators by precedence level, lowest first (FHIRPath §10 "Operator precedence"). */
const LEVELS: readonly (readonly string[])[] = [
  ['implies'],
  ['or', 'xor'],
  ['and'],
  ['in', 'contains'],
  ['=', '~', '!=', '!~'],
  ['<', '>', '<=', '>='],
  ['|'],
  ['is', 'as'],
  ['+', '-', '&'],
  ['*', '/', 'div', 'mod'],
];

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  parseAll(): Ast {
    const ast = this.binary(0);
    if (this.pos !== this.tokens.length) throw new ParseError(`Unexpected ${this.tokens[this.pos]!.v}`);
    return ast;
  }

  private peek(): Token | undefined {
    return this.tokens[this.pos];
  }

  private isOp(v: string): boolean {
    const t = this.peek();
    return t !== undefined && (t.t === 'op' || t.t === 'id') && t.v === v;
  }

  private expect(v: string): void {
    if (!this.isOp(v)) throw new ParseError(`Expected ${v}`);
    this.pos++;
  }

  private binary(level: number): Ast {
    if (level === LEVELS.length) return this.postfix();
    let left = this.binary(level + 1);
    for (;;) {
      const op = LEVELS[level]!.find((o) => this.isOp(o));
      if (op === undefined) return left;
      this.pos++;
      if (op === 'is' || op === 'as') {
        left = { kind: 'type', op, target: left, type: this.typeSpecifier() };
      } else {
        const right = this.binary(level + 1);
        left = op === '|' ? { kind: 'union', items: [...unionItems(left), ...unionItems(right)] } : { kind: 'binary', op, left, right };
      }
    }
  }

  /** `Quantity`, `FHIR.Quantity`, `System.String`: the last part names the type. */
  private typeSpecifier(): string {
    let name = this.identifier();
    while (this.isOp('.')) {
      this.pos++;
      name = this.identifier();
    }
    return name;
  }

  private identifier(): string {
    const t = this.peek();
    if (t?.t !== 'id') throw new ParseError('Expected an identifier');
    this.pos++;
    return t.v;
  }

  private postfix(): Ast {
    let ast = this.primary();
    for (;;) {
      if (this.isOp('.')) {
        this.pos++;
        const name = this.identifier();
        ast = this.isOp('(') ? { kind: 'call', target: ast, name, args: this.args() } : { kind: 'member', target: ast, name };
      } else if (this.isOp('[')) {
        this.pos++;
        const index = this.binary(0);
        this.expect(']');
        ast = { kind: 'index', target: ast, index };
      } else {
        return ast;
      }
    }
  }

  private args(): Ast[] {
    this.expect('(');
    const args: Ast[] = [];
    if (this.isOp(')')) {
      this.pos++;
      return args;
    }
    for (;;) {
      args.push(this.binary(0));
      if (this.isOp(')')) break;
      this.expect(',');
    }
    this.pos++;
    return args;
  }

  private primary(): Ast {
    const t = this.peek();
    if (t === undefined) throw new ParseError('Unexpected end of expression');
    this.pos++;
    switch (t.t) {
      case 'str':
        return { kind: 'literal', value: t.v };
      case 'num':
        return { kind: 'literal', value: Number(t.v) };
      case 'env':
        return { kind: 'env', name: t.v };
      case 'id':
        if (t.v === 'true' || t.v === 'false') return { kind: 'literal', value: t.v === 'true' };
        return this.isOp('(') ? { kind: 'call', target: undefined, name: t.v, args: this.args() } : { kind: 'ident', name: t.v };
      case 'op':
        if (t.v === '(') {
          const inner = this.binary(0);
          this.expect(')');
          return inner;
        }
        throw new ParseError(`Unexpected ${t.v}`);
    }
  }
}

function unionItems(ast: Ast): Ast[] {
  return ast.kind === 'union' ? ast.items : [ast];
}

/** Parses an expression; throws ParseError for syntax outside the supported subset. */
export function parseExpression(source: string): Ast {
  return new Parser(tokenize(source)).parseAll();
}

/** The top-level union branches of an expression (`A | (B | C)` gives A, B, C). */
export function branches(ast: Ast): Ast[] {
  return unionItems(ast);
}

/** The identifier an expression starts from (`Patient` in `(Patient.name as X).y`), if any. */
export function leadingIdentifier(ast: Ast): string | undefined {
  switch (ast.kind) {
    case 'ident':
      return ast.name;
    case 'member':
    case 'index':
    case 'type':
      return leadingIdentifier(ast.target);
    case 'call':
      return ast.target === undefined ? undefined : leadingIdentifier(ast.target);
    case 'binary':
      return leadingIdentifier(ast.left);
    default:
      return undefined;
  }
}

/** Prints an AST back into FHIRPath (fully parenthesised where precedence could matter). */
export function printExpression(ast: Ast): string {
  switch (ast.kind) {
    case 'ident':
      return /^[A-Za-z_][A-Za-z0-9_]*$/.test(ast.name) ? ast.name : `\`${ast.name}\``;
    case 'env':
      return `%${ast.name}`;
    case 'literal':
      return typeof ast.value === 'string' ? `'${ast.value.replace(/['\\]/g, (c) => `\\${c}`)}'` : String(ast.value);
    case 'member':
      return `${printExpression(ast.target)}.${ast.name}`;
    case 'call': {
      const call = `${ast.name}(${ast.args.map(printExpression).join(', ')})`;
      return ast.target === undefined ? call : `${printExpression(ast.target)}.${call}`;
    }
    case 'index':
      return `${printExpression(ast.target)}[${printExpression(ast.index)}]`;
    case 'type':
      return `(${printExpression(ast.target)} ${ast.op} ${ast.type})`;
    case 'binary':
      return `(${printExpression(ast.left)} ${ast.op} ${printExpression(ast.right)})`;
    case 'union':
      return `(${ast.items.map(printExpression).join(' | ')})`;
  }
}
