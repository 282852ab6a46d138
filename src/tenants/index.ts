// The tenants room: tenant keys, what a tenant may acquire, its quotas (DESIGN.md, "Tenants").
// Built by whoever wires the daemon from the config's `tenants` section and handed to both
// planes as core's `Tenancy`; the planes never import this room.

export { Tenants, type TenantsOptions, tenantWeights } from "./tenants.ts";
