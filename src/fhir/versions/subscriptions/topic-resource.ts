/**
 * R4B and R5 `SubscriptionTopic` ⇄ the canonical Topic (T-1, T-4, T-5). The two versions differ only
 * in `canFilterBy` (R4B: comparators inside `modifier`; R5: separate `comparator`) and in `name`
 * (R5 only), so one reader and one writer take a flag.
 */
import type { CanFilterBy, NotificationShape, ResourceTrigger, Topic } from '../../subscription-model.ts';
import type { Resource } from '../../types.ts';
import { codeIn, type Json, objects, optCode, optObject, optString, refuseUnknownModifiers, reqCode, reqString, resourceTypeOf, strings } from './json.ts';
import { compact, INTERACTIONS, listOrUndefined, nonEmpty, prune, QUERY_RESULTS, splitModifiers, TOPIC_STATUSES } from './topic-common.ts';

/** Reads a SubscriptionTopic; undefined for any other resource type. Throws 422 when unusable. */
export function readTopicResource(resource: Resource): Topic | undefined {
  if (resource.resourceType !== 'SubscriptionTopic') return undefined;
  const r = resource as Json;
  const p = 'SubscriptionTopic';
  refuseUnknownModifiers(r, p);
  return compact<Topic>({
    url: reqString(r, 'url', p),
    version: optString(r, 'version', p),
    title: optString(r, 'title', p),
    name: optString(r, 'name', p),
    derivedFrom: listOrUndefined(strings(r, 'derivedFrom', p)),
    date: optString(r, 'date', p),
    description: optString(r, 'description', p),
    status: reqCode(r, 'status', p, TOPIC_STATUSES),
    resourceTriggers: objects(r, 'resourceTrigger', p).map((t) => readTrigger(t.node, t.path)),
    canFilterBy: objects(r, 'canFilterBy', p).map((f) => readCanFilterBy(f.node, f.path)),
    notificationShape: objects(r, 'notificationShape', p).map((s) => readShape(s.node, s.path)),
  });
}

function readTrigger(t: Json, p: string): ResourceTrigger {
  const q = optObject(t, 'queryCriteria', p);
  const qp = `${p}.queryCriteria`;
  const requireBoth = q?.requireBoth;
  return compact<ResourceTrigger>({
    description: optString(t, 'description', p),
    resource: resourceTypeOf(reqString(t, 'resource', p), `${p}.resource`),
    supportedInteraction: strings(t, 'supportedInteraction', p).map((c, i) => codeIn(c, INTERACTIONS, `${p}.supportedInteraction[${i}]`)),
    queryCriteria: q && nonEmpty({
      previous: optString(q, 'previous', qp),
      current: optString(q, 'current', qp),
      resultForCreate: optCode(q, 'resultForCreate', qp, QUERY_RESULTS),
      resultForDelete: optCode(q, 'resultForDelete', qp, QUERY_RESULTS),
      requireBoth: typeof requireBoth === 'boolean' ? requireBoth : undefined,
    }),
    fhirPathCriteria: optString(t, 'fhirPathCriteria', p),
  });
}

function readCanFilterBy(f: Json, p: string): CanFilterBy {
  const resource = optString(f, 'resource', p);
  return compact<CanFilterBy>({
    description: optString(f, 'description', p),
    resource: resource === undefined ? undefined : resourceTypeOf(resource, `${p}.resource`),
    filterParameter: reqString(f, 'filterParameter', p),
    ...splitModifiers(strings(f, 'comparator', p), strings(f, 'modifier', p)),
  });
}

function readShape(s: Json, p: string): NotificationShape {
  return {
    resource: resourceTypeOf(reqString(s, 'resource', p), `${p}.resource`),
    include: strings(s, 'include', p),
    revInclude: strings(s, 'revInclude', p),
  };
}

/** Renders a Topic as a SubscriptionTopic: `r5` true writes R5 (`name`, `comparator`), else R4B. */
export function writeTopicResource(topic: Topic, id: string, r5: boolean): Resource {
  return prune({
    resourceType: 'SubscriptionTopic',
    id,
    url: topic.url,
    version: topic.version,
    name: r5 ? topic.name : undefined,
    title: topic.title,
    derivedFrom: topic.derivedFrom,
    status: topic.status,
    date: topic.date,
    description: topic.description,
    resourceTrigger: topic.resourceTriggers.map(writeTrigger),
    canFilterBy: topic.canFilterBy.map((f) => writeCanFilterBy(f, r5)),
    notificationShape: topic.notificationShape.map((s) => prune({ ...s })),
  });
}

function writeTrigger(t: ResourceTrigger): Json {
  return prune({
    description: t.description,
    resource: t.resource,
    supportedInteraction: t.supportedInteraction,
    queryCriteria: t.queryCriteria && nonEmpty({ ...t.queryCriteria }),
    fhirPathCriteria: t.fhirPathCriteria,
  });
}

function writeCanFilterBy(f: CanFilterBy, r5: boolean): Json {
  return prune({
    description: f.description,
    resource: f.resource,
    filterParameter: f.filterParameter,
    comparator: r5 ? f.comparators : undefined,
    modifier: r5 ? f.modifiers : [...f.modifiers, ...f.comparators],
  });
}
