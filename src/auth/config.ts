/** Authentication settings (REQUIREMENTS §10, D-22), resolved by src/config.ts. Absent: open mode. */
export interface AuthConfig {
  /** External issuer: the `iss` its tokens must carry, and where its keys are (URL or file). */
  external?: { issuer: string; jwks: string; audience?: string; jwksRefetchMs: number };
  /** Embedded issuer: the clients file, and where the signing key lives (a JWK file). */
  embedded?: { clients: string; key?: string; tokenTtlMs: number };
  /** The scope that sees and manages every subscription. */
  adminScope: string;
  /** Most subscriptions one owner may have. */
  maxSubscriptionsPerOwner: number;
}
