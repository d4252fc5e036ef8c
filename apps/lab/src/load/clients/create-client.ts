import type { Impl } from '../load.types.js';
import { CeilingLoadClient } from './ceiling-load-client.js';
import { GeoLoadClient } from './geo-load-client.js';
import type { ClientOptions, LoadClient } from './load-client.js';
import { SocketIoLoadClient } from './socketio-load-client.js';

/** The adapter of an implementation. */
export function createClient(impl: Impl, options: ClientOptions): LoadClient {
  switch (impl) {
    case 'geo':
      return new GeoLoadClient(options);
    case 'socketio':
      return new SocketIoLoadClient(options);
    case 'ceiling':
      return new CeilingLoadClient(options);
  }
}
