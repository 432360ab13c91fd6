/**
 * Small readers for untrusted FHIR JSON that fail with a 422 naming the element (FHIRPath-like
 * path, as the validator reports them), so a client learns exactly which part of its Subscription or
 * topic Herald could not use.
 */
import { parseJson, stringifyJson } from '../../json.ts';
import { unprocessable } from '../../errors.ts';
import { CORE_SD } from './constants.ts';

export type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function fail(path: string, message: string): never {
  throw unprocessable(`${path}: ${message}`, [path]);
}

/** An optional object element; anything else present is an error. */
export function optObject(o: Json, key: string, path: string): Json | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!isObject(v)) fail(`${path}.${key}`, 'must be an object');
  return v;
}

export function reqObject(o: Json, key: string, path: string): Json {
  return optObject(o, key, path) ?? fail(`${path}.${key}`, 'is required');
}

/** An optional non-empty string element. */
export function optString(o: Json, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.trim() === '') fail(`${path}.${key}`, 'must be a non-empty string');
  return v;
}

export function reqString(o: Json, key: string, path: string): string {
  return optString(o, key, path) ?? fail(`${path}.${key}`, 'is required');
}

/** Checks that `value` is one of `allowed`. */
export function codeIn<T extends string>(value: string, allowed: readonly T[], path: string): T {
  if (!(allowed as readonly string[]).includes(value)) fail(path, `'${value}' is not one of ${allowed.join(', ')}`);
  return value as T;
}

/** An optional code that must be one of `allowed`. */
export function optCode<T extends string>(o: Json, key: string, path: string, allowed: readonly T[]): T | undefined {
  const v = optString(o, key, path);
  return v === undefined ? undefined : codeIn(v, allowed, `${path}.${key}`);
}

export function reqCode<T extends string>(o: Json, key: string, path: string, allowed: readonly T[]): T {
  return optCode(o, key, path, allowed) ?? fail(`${path}.${key}`, 'is required');
}

/** An optional array element (missing → empty). */
export function optArray(o: Json, key: string, path: string): unknown[] {
  const v = o[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(`${path}.${key}`, 'must be an array');
  return v;
}

/** An array of objects, each with its own path (`path.key[i]`). */
export function objects(o: Json, key: string, path: string): { node: Json; path: string }[] {
  return optArray(o, key, path).map((node, i) => {
    const at = `${path}.${key}[${i}]`;
    if (!isObject(node)) fail(at, 'must be an object');
    return { node, path: at };
  });
}

/** An array of non-empty strings. */
export function strings(o: Json, key: string, path: string): string[] {
  return optArray(o, key, path).map((v, i) => {
    if (typeof v !== 'string' || v.trim() === '') fail(`${path}.${key}[${i}]`, 'must be a non-empty string');
    return v;
  });
}

/** The extensions of `o[key]` (default `extension`) with the given URL, with their paths. */
export function extensionsWithUrl(o: Json, url: string, path: string, key = 'extension'): { node: Json; path: string }[] {
  return objects(o, key, path).filter((e) => e.node.url === url);
}

/**
 * Refuses an extension of `o` (a position whose extensions change what Herald must do, such as
 * the backport filter, channel and payload extensions) whose URL is not one of `known`: ignoring
 * it would serve something other than what the client asked for.
 */
export function onlyKnownExtensions(o: Json, path: string, known: readonly string[]): void {
  for (const e of objects(o, 'extension', path)) {
    if (!known.includes(e.node.url as string)) {
      fail(e.path, `extension '${String(e.node.url).slice(0, 200)}' is not supported here (Herald understands ${known.join(', ')})`);
    }
  }
}

/**
 * Refuses the first `modifierExtension` anywhere in `node` whose URL `allowed` does not accept: a
 * modifier changes the meaning of the element it sits on, so one Herald does not understand must
 * not be ignored. Extensions and primitive `_x` elements are not searched: they are Elements,
 * which cannot carry modifier extensions (the validator refuses them there).
 */
export function refuseUnknownModifiers(node: unknown, path: string, allowed: (url: string) => boolean = () => false): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => refuseUnknownModifiers(item, `${path}[${i}]`, allowed));
    return;
  }
  if (!isObject(node)) return;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'modifierExtension') {
      for (const e of objects(node, key, path)) {
        const url = String(e.node.url);
        if (!allowed(url)) fail(e.path, `modifier extension '${url.slice(0, 200)}' is not understood by this server`);
      }
    } else if (key !== 'extension' && !key.startsWith('_')) {
      refuseUnknownModifiers(value, `${path}.${key}`, allowed);
    }
  }
}

/** The `value[x]` of an extension: its key and value, or undefined when it has none. */
export function extValue(ext: Json): { key: string; value: unknown } | undefined {
  for (const key in ext) if (key.startsWith('value')) return { key, value: ext[key] };
  return undefined;
}

/** A string-valued extension (uri, string, code, markdown, canonical, dateTime, …). */
export function extString(ext: Json, path: string): string {
  const v = extValue(ext);
  if (v === undefined || typeof v.value !== 'string' || v.value.trim() === '') fail(`${path}.value`, 'must be a non-empty string');
  return v.value;
}

/**
 * A whole-number extension. Accepts any integer `value[x]` (unsignedInt, positiveInt, integer):
 * fhir-candle sends the heartbeat as `valueInteger` (third-party/README).
 */
export function extInteger(ext: Json, path: string, min: number): number {
  const v = extValue(ext);
  if (v === undefined || typeof v.value !== 'number' || !Number.isInteger(v.value) || v.value < min) {
    fail(`${path}.${v?.key ?? 'value'}`, `must be an integer of at least ${min}`);
  }
  return v.value;
}

const TYPE_NAME = /^[A-Z][A-Za-z0-9]*$/;

/**
 * A resource type given as a name or as a core StructureDefinition URL (fhir-candle's qualified
 * topics, R5 `filterBy.resourceType`), reduced to the name. Other URLs (profiles) cannot be used.
 */
export function resourceTypeOf(value: string, path: string): string {
  const name = value.startsWith(CORE_SD) ? value.slice(CORE_SD.length).split('|')[0]! : value;
  if (!TYPE_NAME.test(name)) fail(path, `'${value}' is not a resource type or a core StructureDefinition URL`);
  return name;
}

/** A deep copy that keeps the input untouched (stored resources are shared), decimals as written. */
export function copy<T>(value: T): T {
  return parseJson(stringifyJson(value)) as T;
}
