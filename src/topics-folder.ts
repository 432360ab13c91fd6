import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Resource } from './fhir/types.ts';
import { adapterFor } from './fhir/versions/index.ts';
import { type BaseContext, route } from './interactions/index.ts';
import type { Log } from './subscriptions/index.ts';

/**
 * Installs the topics of a folder (HERALD_TOPICS) into one base at start. Each `*.json` file is a
 * SubscriptionTopic (R4B/R5 shape) or an R4 Basic-wrapped topic; it is converted to the base's
 * representation and written with a PUT (validated like any client write), under its own id.
 * A topic whose stored version already says the same is left alone, so restarts add no versions.
 * Each topic installed or left as it was is logged.
 */
export async function installTopics(base: BaseContext, dir: string, log: Log): Promise<void> {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  for (const file of files) {
    const resource = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Resource;
    const source = adapterFor(resource.resourceType === 'Basic' ? 'R4' : 'R5').subscriptions;
    const topic = source.readTopic(resource);
    if (!topic) throw new Error(`${file}: not a SubscriptionTopic or Basic-wrapped topic`);
    const id = resource.id ?? topic.url.split('/').pop()!.replace(/[^A-Za-z0-9\-.]/g, '-').slice(0, 64);
    const target = base.adapter.subscriptions.writeTopic(topic, id);
    const current = await base.store.read(base.version, target.resourceType, id);
    const fields = { file, topic: topic.url, resource: `${target.resourceType}/${id}` };
    if (current?.json && same(JSON.parse(current.json) as Resource, target)) {
      log.info(fields, 'topic already installed');
      continue;
    }
    try {
      await route(base, base.store, { method: 'PUT', path: `${target.resourceType}/${id}`, query: new URLSearchParams(), body: target });
    } catch (err) {
      throw new Error(`${file}: topic rejected on ${base.version}: ${(err as Error).message}`);
    }
    log.info(fields, 'topic installed');
  }
}

function same(a: Resource, b: Resource): boolean {
  const strip = ({ meta: _m, ...rest }: Resource) => JSON.stringify(rest);
  return strip(a) === strip(b);
}
