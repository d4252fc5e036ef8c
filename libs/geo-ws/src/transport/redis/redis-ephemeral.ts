import type { Redis } from 'ioredis';
import type { GeoEnvelopeDraft } from '../../envelope/geo-envelope.interface.js';
import type { GeoSubscription } from '../geo-transport.interface.js';
import { unavailable } from './redis-errors.js';

type EphemeralHandler = (envelope: GeoEnvelopeDraft) => void;

/**
 * This node's ephemeral subscriptions (G5): one Pub/Sub channel per log with local members,
 * on the transport's subscriber connection. A channel's one handler is held as it is (one
 * feed per log and node is the usual case); a `Set` is made only for a second one.
 */
export class EphemeralChannels {
  private readonly handlers = new Map<string, EphemeralHandler | Set<EphemeralHandler>>();

  constructor(private readonly subscriber: () => Redis) {}

  async add(channel: string, handler: EphemeralHandler): Promise<GeoSubscription> {
    const subscriber = this.subscriber();
    const held = this.handlers.get(channel);
    if (held === undefined) this.handlers.set(channel, handler);
    else if (held instanceof Set) held.add(handler);
    else this.handlers.set(channel, new Set([held, handler]));
    if (held === undefined) await subscriber.subscribe(channel).catch((error: unknown) => Promise.reject(unavailable(error)));
    return new EphemeralSubscription(this, channel, handler);
  }

  async remove(channel: string, handler: EphemeralHandler): Promise<void> {
    const held = this.handlers.get(channel);
    if (held instanceof Set) {
      held.delete(handler);
      if (held.size === 1) this.handlers.set(channel, held.values().next().value!);
      return;
    }
    if (held !== handler) return;
    this.handlers.delete(channel);
    await this.subscriber()
      .unsubscribe(channel)
      .catch(() => undefined);
  }

  /** A message on `channel`, to its handlers; false when the channel is none of this node's. */
  deliver(channel: string, message: string): boolean {
    const held = this.handlers.get(channel);
    if (held === undefined) return false;
    let envelope: GeoEnvelopeDraft;
    try {
      envelope = JSON.parse(message) as GeoEnvelopeDraft;
    } catch {
      return true; // not ours; ephemeral delivery is best effort by definition
    }
    if (held instanceof Set) for (const handler of held) handler(envelope);
    else held(envelope);
    return true;
  }
}

/** One feed's ephemeral subscription: three references, no closure. */
class EphemeralSubscription implements GeoSubscription {
  constructor(
    private readonly channels: EphemeralChannels,
    private readonly channel: string,
    private readonly handler: EphemeralHandler,
  ) {}

  close(): Promise<void> {
    return this.channels.remove(this.channel, this.handler);
  }
}
