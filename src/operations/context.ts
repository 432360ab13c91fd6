import type { Principal } from '../auth/index.ts';
import type { SubscriptionSpec } from '../fhir/subscription-model.ts';
import type { FhirVersion, Resource } from '../fhir/types.ts';
import type { Store } from '../store/store.ts';
import type { SubscriptionEngine } from '../subscriptions/index.ts';
import type { ParameterDefinition } from './params.ts';

/** What operations need of a base (BaseContext provides it). */
export interface OperationContext {
  version: FhirVersion;
  baseUrl: string;
  store: Store;
  subscriptions: SubscriptionEngine;
  now(): Date;
  /** Where clients bind websocket subscriptions, how long a binding token lives (D-2, D-4), and who ends the bindings of a revoked one. */
  websocket: { url: string; tokenTtlMs: number; revoked(hash: string): void; maxSubscriptionsPerToken: number };
}

export interface OperationRequest {
  /** Resource type, or undefined at system level. */
  type?: string;
  /** Resource id at instance level. */
  id?: string;
  params: Map<string, string[]>;
  /** The caller in auth mode: operations concern only the Subscriptions it may manage (D-22). */
  principal?: Principal;
}

export interface OperationResult {
  status: number;
  resource: Resource;
  /** The answer holds a credential: `Cache-Control: no-store`. */
  noStore?: boolean;
}

export interface OperationDescriptor {
  /** Name without `$`. */
  name: string;
  /** The resource type it belongs to. */
  type: string;
  levels: readonly ('type' | 'instance')[];
  /** The input parameters it takes (its OperationDefinition's `in` parameters); nothing else is accepted. */
  parameters: readonly ParameterDefinition[];
  /** Changes state, so POST only (FHIR OperationDefinition.affectsState). */
  affectsState?: boolean;
  run(ctx: OperationContext, req: OperationRequest): Promise<OperationResult>;
}

/**
 * A stored Subscription in the version-neutral model, or undefined when it is unknown or deleted.
 * Every operation reads one this way: the stored resource, not the registry, also knows
 * subscriptions that are off.
 */
export async function readStoredSubscription(ctx: OperationContext, id: string): Promise<SubscriptionSpec | undefined> {
  const stored = await ctx.store.read(ctx.version, 'Subscription', id);
  if (!stored?.json) return undefined;
  return ctx.subscriptions.adapter.subscriptions.readSubscription(JSON.parse(stored.json) as Resource);
}
