import { Transform } from 'class-transformer';
import { IsString, Length } from 'class-validator';

/** A chat message as clients send it. */
export class ChatMessageDto {
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value))
  @IsString()
  @Length(1, 500)
  text!: string;
}
