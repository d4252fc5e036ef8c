/**
 * Thrown at boot when `GeoWsModule` options are wrong. The message names the option and
 * says how to fix it, so a misconfigured region fails before it accepts a single client.
 */
export class GeoConfigError extends Error {
  constructor(message: string) {
    super(`GeoWsModule: ${message}`);
    this.name = 'GeoConfigError';
  }
}
