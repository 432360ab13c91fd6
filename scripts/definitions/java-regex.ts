/**
 * Translation of the spec's primitive regexes (written for Java / XML Schema engines) to JavaScript.
 *
 * The one difference that matters for these patterns is whitespace: Java's `\s` is ASCII only
 * ([ \t\n\x0B\f\r]) while JavaScript's also covers Unicode spaces. Taken literally in JavaScript,
 * R4's string regex `[ \r\n\t\S]+` would reject any string holding a no-break space, which real
 * names and narratives do. So `\s` / `\S` are rewritten to explicit ASCII classes; everything else
 * is copied unchanged. Unsupported constructs throw, so a new spec regex cannot slip through silently.
 */

const JAVA_WHITESPACE = [' ', '\t', '\n', '\x0B', '\f', '\r'] as const;
const ESCAPED: Record<string, string> = { ' ': ' ', '\t': '\\t', '\n': '\\n', '\x0B': '\\x0B', '\f': '\\f', '\r': '\\r' };
const ESCAPE_TO_CHAR: Record<string, string> = { t: '\t', n: '\n', r: '\r', f: '\f' };
const WS_CLASS_BODY = JAVA_WHITESPACE.map((c) => ESCAPED[c]).join('');

/** Rewrites one Java regex to an equivalent JavaScript regex source (unanchored, no flags). */
export function javaRegexToJs(source: string): string {
  let out = '';
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    if (c === '[') {
      const end = classEnd(source, i);
      out += translateClass(source.slice(i + 1, end));
      i = end + 1;
    } else if (c === '\\') {
      const next = source[i + 1];
      if (next === 'p' || next === 'P') throw new Error(`Unsupported regex construct \\${next} in ${source}`);
      out += next === 's' ? `[${WS_CLASS_BODY}]` : next === 'S' ? `[^${WS_CLASS_BODY}]` : c + next;
      i += 2;
    } else {
      out += c;
      i += 1;
    }
  }
  new RegExp(out); // fail the build, not the server, on a pattern JavaScript rejects
  return out;
}

/** Index of the `]` closing the class that opens at `start`. */
function classEnd(source: string, start: number): number {
  for (let i = start + 1; i < source.length; i++) {
    if (source[i] === '\\') i++;
    else if (source[i] === '[') throw new Error(`Nested character classes are not supported: ${source}`);
    else if (source[i] === ']') return i;
  }
  throw new Error(`Unterminated character class in ${source}`);
}

/**
 * Translates a class body. `\s` expands to the ASCII whitespace list. A class holding `\S` matches
 * every non-whitespace character plus the whitespace it lists, i.e. everything except the Java
 * whitespace it does not list, so it becomes that negated class.
 */
function translateClass(body: string): string {
  const negated = body.startsWith('^');
  const members = negated ? body.slice(1) : body;
  let translated = '';
  let hasNonSpace = false;
  const listedSpace = new Set<string>();
  for (let i = 0; i < members.length; i++) {
    const c = members[i];
    if (c !== '\\') {
      translated += c;
      if ((JAVA_WHITESPACE as readonly string[]).includes(c)) listedSpace.add(c);
      continue;
    }
    const next = members[++i];
    if (next === 's') {
      translated += WS_CLASS_BODY;
      JAVA_WHITESPACE.forEach((w) => listedSpace.add(w));
    } else if (next === 'S') {
      hasNonSpace = true;
    } else {
      translated += c + next;
      if (ESCAPE_TO_CHAR[next] !== undefined) listedSpace.add(ESCAPE_TO_CHAR[next]);
    }
  }
  if (!hasNonSpace) return `[${negated ? '^' : ''}${translated}]`;
  if (negated) throw new Error(`Negated class with \\S is not supported: [${body}]`);
  const unlisted = JAVA_WHITESPACE.filter((w) => !listedSpace.has(w));
  return unlisted.length === 0 ? '[\\s\\S]' : `[^${unlisted.map((w) => ESCAPED[w]).join('')}]`;
}
