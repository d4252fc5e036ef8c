/** Injection token of the validated options with defaults applied. */
export const GEO_WS_RESOLVED_OPTIONS = Symbol('GEO_WS_RESOLVED_OPTIONS');
