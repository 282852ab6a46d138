// Tenants as the pool sees them: opaque names with a weight, and what each is due of a full
// pool. The pool knows nothing of keys or config; whoever starts the Herd says what each
// tenant weighs (HerdOptions.tenantWeight).
//
// Definitions (DESIGN.md, "Tenants"; docs/architecture.md):
//   - a session's or an acquire's tenant is a name, or undefined: the operator's. The operator
//     counts as one more tenant, of weight 1;
//   - a tenant's weight is what `tenantWeight` says; anything but a positive finite number (and
//     no `tenantWeight` at all) counts as 1;
//   - a pool's contenders are the tenants that hold a live session in it or have an acquire
//     queued for it, the operator included;
//   - a contender's fair share of the pool is max × its weight ÷ the sum of the contenders'
//     weights: a real number, not rounded. A tenant is above its share when it holds more live
//     sessions in the pool than that.
//
// Pure functions; no state.

/** An acquire's or a session's tenant: a name, or undefined for the operator's. */
export type Tenant = string | undefined;

/** What a named tenant weighs (the operator's weighs 1). */
export type TenantWeight = (tenant: string) => number;

/** `tenant`'s weight under `weights`, as defined above. */
export function weightOf(weights: TenantWeight | undefined, tenant: Tenant): number {
  if (tenant === undefined || !weights) return 1;
  const w = weights(tenant);
  return Number.isFinite(w) && w > 0 ? w : 1;
}

/** Each contender's fair share of a pool of `max` workers. */
export function fairShares(
  max: number,
  contenders: Iterable<Tenant>,
  weight: (tenant: Tenant) => number,
): Map<Tenant, number> {
  const weights = new Map<Tenant, number>();
  for (const t of contenders) weights.set(t, weight(t));
  let sum = 0;
  for (const w of weights.values()) sum += w;
  const shares = new Map<Tenant, number>();
  for (const [t, w] of weights) shares.set(t, (max * w) / sum);
  return shares;
}
