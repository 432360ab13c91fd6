import { randomBytes } from 'node:crypto';
import { FhirError, badRequest, notFound } from '../fhir/errors.ts';
import type { Resource } from '../fhir/types.ts';
import { LIVE_STATUSES, bindingTokenHash } from '../subscriptions/index.ts';
import { type OperationContext, type OperationDescriptor, readStoredSubscription } from './context.ts';

/**
 * Subscription/$get-ws-binding-token (REQUIREMENTS §7.3, D-2..D-4): an opaque token of 256
 * random bits for the given websocket subscriptions (instance: that one; type: the `id`s, or
 * every live websocket subscription when none is given). An unknown id is a 404, a subscription
 * of another channel a 400; a token never covers part of what was asked. A subscription may be
 * bound while it is live (LIVE_STATUSES), `error` included: see there why.
 */
export const getWsBindingToken: OperationDescriptor = {
  name: 'get-ws-binding-token',
  type: 'Subscription',
  levels: ['type', 'instance'],
  parameters: [{ name: 'id', type: 'id', max: '*' }],
  async run(ctx, req) {
    const asked = req.id !== undefined ? [req.id] : [...new Set(req.params.get('id') ?? [])];
    const ids = asked.length > 0 ? asked : liveWebsocketIds(ctx).filter((id) => ctx.subscriptions.canManage(req.principal, id));
    if (ids.length === 0) throw badRequest('There are no websocket subscriptions to bind: create one first, or name ids with `id`');
    const max = ctx.websocket.maxSubscriptionsPerToken;
    if (ids.length > max) {
      const which = asked.length > 0 ? `${ids.length} were asked for` : `there are ${ids.length}: name some with \`id\``;
      throw new FhirError(400, 'too-costly', `A binding token covers at most ${max} subscriptions (this server's limit, HERALD_MAX_SUBSCRIPTIONS_PER_TOKEN); ${which}`, ['id']);
    }
    // D-22: a token is minted only for subscriptions the caller may manage; others do not exist for it.
    for (const id of ids) {
      if (!ctx.subscriptions.canManage(req.principal, id)) throw notFound(`Subscription/${id} is not known`);
      await checkWebsocket(ctx, id);
    }
    const token = randomBytes(32).toString('base64url');
    const expiresAt = new Date(ctx.now().getTime() + ctx.websocket.tokenTtlMs).toISOString();
    await ctx.store.transaction((tx) =>
      tx.putBindingToken({ hash: bindingTokenHash(token), fv: ctx.version, owner: req.principal?.id ?? 'anonymous', subscriptions: ids, expiresAt, revoked: false }),
    );
    const parameters: Resource = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'token', valueString: token },
        { name: 'expiration', valueDateTime: expiresAt },
        ...ids.map((id) => ({ name: 'subscription', valueString: id })),
        { name: 'websocket-url', valueUrl: ctx.websocket.url },
      ],
    };
    return { status: 200, resource: parameters, noStore: true };
  },
};

function liveWebsocketIds(ctx: OperationContext): string[] {
  return ctx.subscriptions.registry
    .allSubscriptions()
    .filter((s) => s.spec.channel.type === 'websocket' && LIVE_STATUSES.has(s.status))
    .map((s) => s.id);
}

async function checkWebsocket(ctx: OperationContext, id: string): Promise<void> {
  const spec = await readStoredSubscription(ctx, id);
  if (!spec) throw notFound(`Subscription/${id} is not known`);
  if (spec.channel.type !== 'websocket') throw badRequest(`Subscription/${id} is a ${spec.channel.type} subscription, not websocket`, ['id']);
  if (!LIVE_STATUSES.has(spec.status)) throw new FhirError(400, 'business-rule', `Subscription/${id} is ${spec.status}: set it active to bind it`, ['id']);
}
