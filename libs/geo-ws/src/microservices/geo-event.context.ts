import { BaseRpcContext } from '@nestjs/microservices';
import type { JsMsg } from '@nats-io/jetstream';
import type { GeoLoggedEnvelope } from '../envelope/geo-envelope.interface.js';

/**
 * The context of a geo event in an `@EventPattern` handler (`@Ctx()`): the envelope and
 * the JetStream message (for its delivery count).
 */
export class GeoEventContext extends BaseRpcContext<[GeoLoggedEnvelope, JsMsg]> {
  getEnvelope(): GeoLoggedEnvelope {
    return this.args[0];
  }

  getMessage(): JsMsg {
    return this.args[1];
  }

  /** 1 on the first delivery; more after a handler threw and the event was redelivered. */
  getDeliveryCount(): number {
    return this.args[1].info.deliveryCount;
  }
}
