import { createHmac } from 'node:crypto';

/**
 * Feishu's custom-bot signature: base64(HMAC-SHA256(key = "<timestamp
 * seconds>\n<secret>", message = "")). The key is the string, the message
 * is empty: the reverse of what one would guess.
 */
export function feishuSign(secret: string, timestampSeconds: number): string {
  return createHmac('sha256', `${timestampSeconds}\n${secret}`).update('').digest('base64');
}
