import type { Principal } from '../auth/index.ts';
import type { FhirVersion, Resource } from '../fhir/types.ts';
import type { Store } from '../store/store.ts';
import type { SubscriptionEngine } from '../subscriptions/index.ts';

/** What operations need of a base (BaseContext provides it). */
export interface OperationContext {
  version: FhirVersion;
  baseUrl: string;
  store: Store;
  subscriptions: SubscriptionEngine;
  now(): Date;
  /** Where clients bind websocket subscriptions, and how long a binding token lives (D-2, D-4). */
  websocket: { url: string; tokenTtlMs: number };
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
}

export interface OperationDescriptor {
  /** Name without `$`. */
  name: string;
  /** The resource type it belongs to. */
  type: string;
  levels: readonly ('type' | 'instance')[];
  run(ctx: OperationContext, req: OperationRequest): Promise<OperationResult>;
}
