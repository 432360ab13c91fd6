import { badRequest, outcomeOf } from '../fhir/errors.ts';
import type { OperationDescriptor } from './context.ts';
import { bindingTokenHash } from '../subscriptions/index.ts';

/**
 * Subscription/$revoke-ws-binding-token (Herald's own, issue 13): ends a binding token before it
 * expires, as OAuth token revocation does (RFC 7009): POST the token in a Parameters body; holding
 * it is the right to revoke it. Binding with it fails from then on, and every socket bound with it
 * gets an OperationOutcome frame and no more notifications for it. An unknown token is no error:
 * either way it no longer works.
 */
export const revokeWsBindingToken: OperationDescriptor = {
  name: 'revoke-ws-binding-token',
  type: 'Subscription',
  levels: ['type'],
  affectsState: true,
  parameters: [{ name: 'token', type: 'binding-token', max: 1 }],
  async run(ctx, req) {
    const tokens = req.params.get('token') ?? [];
    if (tokens.length !== 1 || tokens[0] === '') throw badRequest('Give the binding token to revoke once, as the parameter `token`', ['token']);
    const hash = bindingTokenHash(tokens[0]!);
    const known = await ctx.store.bindingToken(hash);
    // An unknown token binds no socket (a bind needs the stored token): no socket is looked at.
    if (known) {
      await ctx.store.transaction((tx) => tx.revokeBindingToken(hash));
      ctx.websocket.revoked(hash);
    }
    return { status: 200, resource: outcomeOf('information', 'informational', known ? 'The binding token is revoked' : 'No such binding token: nothing to revoke'), noStore: true };
  },
};
