/** The `codec` label of frames sent as JSON text. */
export const JSON_CODEC = 'json';

/**
 * The wire codec of a connection, for the `codec` label: the one place that reads it.
 * Every connection speaks JSON today; a connection that negotiated another codec says so
 * in its `codec` field.
 */
export function codecOf(connection: object): string {
  const { codec } = connection as { codec?: unknown };
  return typeof codec === 'string' ? codec : JSON_CODEC;
}
