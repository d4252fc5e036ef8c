import { Injectable, ValidationPipe } from '@nestjs/common';
import { GeoEventPayload, GeoSubscribe } from '@geo-ws/nest';
import { ChatMessageDto } from './chat-message.dto.js';

/**
 * The whole server side of the chat: two handlers. geo-ws takes care of rooms, order,
 * delivery to every region and resume.
 */
@Injectable()
export class ChatGateway {
  /** Appended to the room's global log: every member in every region gets it, in one order. */
  @GeoSubscribe('chat.message')
  onMessage(
    @GeoEventPayload(new ValidationPipe({ transform: true, whitelist: true, forbidNonWhitelisted: true })) message: ChatMessageDto,
  ) {
    return { text: message.text };
  }

  /** Typing indicators skip the log: at-most-once, no history. */
  @GeoSubscribe('chat.typing', { ephemeral: true })
  onTyping() {
    return {};
  }
}
