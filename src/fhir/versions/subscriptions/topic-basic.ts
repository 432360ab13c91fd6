/**
 * R4 topics as `Basic` resources (T-2, D-12): `code` = fhir-types#SubscriptionTopic, the topic's
 * elements as cross-version `extension-SubscriptionTopic.*` extensions, `status` as a
 * modifierExtension. Both the `5.0` and `4.3` URL prefixes are read (ISSUE-6); `5.0` is written.
 */
import type { CanFilterBy, NotificationShape, ResourceTrigger, Topic } from '../../subscription-model.ts';
import type { Resource } from '../../types.ts';
import { SYSTEM, TOPIC_CODE, XVER_TOPIC_PREFIXES, XVER_TOPIC_WRITE_PREFIX } from './constants.ts';
import { codeIn, extString, extValue, fail, type Json, objects, refuseUnknownModifiers, resourceTypeOf } from './json.ts';
import { compact, INTERACTIONS, listOrUndefined, nonEmpty, QUERY_RESULTS, splitModifiers, TOPIC_STATUSES } from './topic-common.ts';

type Node = { node: Json; path: string };
/** Extensions grouped by their (sub-)extension name, e.g. `resourceTrigger` or `filterParameter`. */
type Parts = Map<string, Node[]>;

/** True for a Basic whose code says it is a SubscriptionTopic. */
export function isBasicTopic(resource: Resource): boolean {
  if (resource.resourceType !== 'Basic') return false;
  const codings = (resource.code as { coding?: unknown } | undefined)?.coding;
  return Array.isArray(codings) && codings.some((c: Json) => c?.system === SYSTEM.fhirTypes && c?.code === TOPIC_CODE);
}

/** Reads a Basic-wrapped topic; undefined for any other resource. Throws 422 when unusable. */
export function readBasicTopic(resource: Resource): Topic | undefined {
  if (!isBasicTopic(resource)) return undefined;
  const r = resource as Json;
  refuseUnknownModifiers(r, 'Basic', (url) => XVER_TOPIC_PREFIXES.some((p) => url === `${p}status`));
  const top = groupTop(r, 'extension');
  const mods = groupTop(r, 'modifierExtension');
  const status = one(mods, 'status') ?? one(top, 'status') ?? fail('Basic.modifierExtension', 'the SubscriptionTopic.status extension is required');
  const url = one(top, 'url') ?? fail('Basic.extension', 'the SubscriptionTopic.url extension is required');
  return compact<Topic>({
    url: extString(url.node, url.path),
    version: optText(top, 'version'),
    title: optText(top, 'title'),
    name: optText(top, 'name'),
    derivedFrom: listOrUndefined(texts(top, 'derivedFrom')),
    date: optText(top, 'date'),
    description: optText(top, 'description'),
    status: codeIn(extString(status.node, status.path), TOPIC_STATUSES, `${status.path}.valueCode`),
    resourceTriggers: (top.get('resourceTrigger') ?? []).map(readTrigger),
    canFilterBy: (top.get('canFilterBy') ?? []).map(readCanFilterBy),
    notificationShape: (top.get('notificationShape') ?? []).map(readShape),
  });
}

function groupTop(r: Json, key: string): Parts {
  const parts: Parts = new Map();
  for (const ext of objects(r, key, 'Basic')) {
    const url = typeof ext.node.url === 'string' ? ext.node.url : '';
    const prefix = XVER_TOPIC_PREFIXES.find((p) => url.startsWith(p));
    if (prefix !== undefined) add(parts, url.slice(prefix.length), ext);
  }
  return parts;
}

function groupSub(ext: Node): Parts {
  const parts: Parts = new Map();
  for (const sub of objects(ext.node, 'extension', ext.path)) {
    if (typeof sub.node.url === 'string') add(parts, sub.node.url, sub);
  }
  return parts;
}

function add(parts: Parts, name: string, node: Node): void {
  const list = parts.get(name);
  if (list === undefined) parts.set(name, [node]);
  else list.push(node);
}

function one(parts: Parts, name: string): Node | undefined {
  return parts.get(name)?.[0];
}

function optText(parts: Parts, name: string): string | undefined {
  const n = one(parts, name);
  return n && extString(n.node, n.path);
}

function texts(parts: Parts, name: string): string[] {
  return (parts.get(name) ?? []).map((n) => extString(n.node, n.path));
}

function required(parts: Parts, name: string, at: Node): string {
  return optText(parts, name) ?? fail(`${at.path}.extension`, `the '${name}' sub-extension is required`);
}

/** The `resource` sub-extension as a type name (a core StructureDefinition URL is reduced). */
function resourceOf(parts: Parts, at: Node, isRequired: true): string;
function resourceOf(parts: Parts, at: Node, isRequired: false): string | undefined;
function resourceOf(parts: Parts, at: Node, isRequired: boolean): string | undefined {
  const n = one(parts, 'resource');
  if (n === undefined) return isRequired ? fail(`${at.path}.extension`, `the 'resource' sub-extension is required`) : undefined;
  return resourceTypeOf(extString(n.node, n.path), `${n.path}.valueUri`);
}

function readTrigger(ext: Node): ResourceTrigger {
  const s = groupSub(ext);
  const q = one(s, 'queryCriteria');
  const interactions = s.get('supportedInteraction') ?? [];
  return compact<ResourceTrigger>({
    description: optText(s, 'description'),
    resource: resourceOf(s, ext, true),
    supportedInteraction: interactions.map((n) => codeIn(extString(n.node, n.path), INTERACTIONS, `${n.path}.valueCode`)),
    queryCriteria: q && readQuery(q),
    fhirPathCriteria: optText(s, 'fhirPathCriteria'),
  });
}

function readQuery(ext: Node): ResourceTrigger['queryCriteria'] {
  const s = groupSub(ext);
  const result = (name: string) => {
    const n = one(s, name);
    return n && codeIn(extString(n.node, n.path), QUERY_RESULTS, `${n.path}.valueCode`);
  };
  const both = one(s, 'requireBoth');
  const requireBoth = both && extValue(both.node)?.value;
  return nonEmpty({
    previous: optText(s, 'previous'),
    current: optText(s, 'current'),
    resultForCreate: result('resultForCreate'),
    resultForDelete: result('resultForDelete'),
    requireBoth: typeof requireBoth === 'boolean' ? requireBoth : undefined,
  });
}

function readCanFilterBy(ext: Node): CanFilterBy {
  const s = groupSub(ext);
  return compact<CanFilterBy>({
    description: optText(s, 'description'),
    resource: resourceOf(s, ext, false),
    filterParameter: required(s, 'filterParameter', ext),
    ...splitModifiers(texts(s, 'comparator'), texts(s, 'modifier')),
  });
}

function readShape(ext: Node): NotificationShape {
  const s = groupSub(ext);
  return {
    resource: resourceOf(s, ext, true),
    include: texts(s, 'include'),
    revInclude: texts(s, 'revInclude'),
  };
}

/** Renders a Topic as an R4 Basic with `5.0` cross-version extensions (the fhir-candle form). */
export function writeBasicTopic(topic: Topic, id: string): Resource {
  const top = (name: string, value: Json) => ({ url: XVER_TOPIC_WRITE_PREFIX + name, ...value });
  const extension = [
    top('url', { valueUri: topic.url }),
    topic.version && top('version', { valueString: topic.version }),
    topic.name && top('name', { valueString: topic.name }),
    topic.title && top('title', { valueString: topic.title }),
    ...(topic.derivedFrom ?? []).map((d) => top('derivedFrom', { valueCanonical: d })),
    topic.date && top('date', { valueDateTime: topic.date }),
    topic.description && top('description', { valueMarkdown: topic.description }),
    ...topic.resourceTriggers.map((t) => top('resourceTrigger', { extension: triggerParts(t) })),
    ...topic.canFilterBy.map((f) => top('canFilterBy', { extension: filterParts(f) })),
    ...topic.notificationShape.map((s) => top('notificationShape', { extension: shapeParts(s) })),
  ].filter(Boolean);
  return {
    resourceType: 'Basic',
    id,
    modifierExtension: [top('status', { valueCode: topic.status })],
    extension,
    code: { coding: [{ system: SYSTEM.fhirTypes, code: TOPIC_CODE }] },
  };
}

type Sub = [name: string, valueKey: string, value: unknown];
const subs = (list: Sub[]): Json[] => list.filter((s) => s[2] !== undefined).map(([url, key, value]) => ({ url, [key]: value }));

function triggerParts(t: ResourceTrigger): Json[] {
  const q = t.queryCriteria;
  const query = q && subs([
    ['previous', 'valueString', q.previous],
    ['resultForCreate', 'valueCode', q.resultForCreate],
    ['current', 'valueString', q.current],
    ['resultForDelete', 'valueCode', q.resultForDelete],
    ['requireBoth', 'valueBoolean', q.requireBoth],
  ]);
  return [
    ...subs([['description', 'valueMarkdown', t.description], ['resource', 'valueUri', t.resource]]),
    ...subs(t.supportedInteraction.map((i): Sub => ['supportedInteraction', 'valueCode', i])),
    ...(query && query.length > 0 ? [{ url: 'queryCriteria', extension: query }] : []),
    ...subs([['fhirPathCriteria', 'valueString', t.fhirPathCriteria]]),
  ];
}

function filterParts(f: CanFilterBy): Json[] {
  return subs([
    ['description', 'valueMarkdown', f.description],
    ['resource', 'valueUri', f.resource],
    ['filterParameter', 'valueString', f.filterParameter],
    ...f.comparators.map((c): Sub => ['comparator', 'valueCode', c]),
    ...f.modifiers.map((m): Sub => ['modifier', 'valueCode', m]),
  ]);
}

function shapeParts(s: NotificationShape): Json[] {
  return subs([
    ['resource', 'valueUri', s.resource],
    ...s.include.map((i): Sub => ['include', 'valueString', i]),
    ...s.revInclude.map((i): Sub => ['revInclude', 'valueString', i]),
  ]);
}
