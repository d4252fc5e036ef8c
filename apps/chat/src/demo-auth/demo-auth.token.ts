/** Injection token of the demo authority's settings (`DemoAuthConfig` and the region names). */
export const DEMO_AUTH = Symbol('DEMO_AUTH');
