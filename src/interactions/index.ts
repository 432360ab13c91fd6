/** The FHIR REST interactions, HTTP-free: the edge builds a FhirRequest and calls route(). */
export { allowedMethods, route } from './router.ts';
export type { BaseContext, Db, FhirRequest, FhirResponse, Method } from './context.ts';
export { preferredReturn } from './context.ts';
