import { createHmac } from 'node:crypto';

/**
 * DingTalk's robot signature: base64(HMAC-SHA256(key = secret,
 * message = "<timestamp ms>\n<secret>")).
 */
export function dingtalkSign(secret: string, timestampMs: number): string {
  return createHmac('sha256', secret).update(`${timestampMs}\n${secret}`).digest('base64');
}

/** The robot URL with `timestamp` and `sign` added to its query (URL-encoded). */
export function signedUrl(webhookUrl: string, secret: string, timestampMs: number): string {
  const url = new URL(webhookUrl);
  url.searchParams.set('timestamp', String(timestampMs));
  url.searchParams.set('sign', dingtalkSign(secret, timestampMs));
  return url.toString();
}
