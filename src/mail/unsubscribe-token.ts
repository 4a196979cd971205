import { MAIL_CHANNELS, type MailChannel } from './mail.types';
import { derivedKey, openToken, sealToken, UUID, uuidBytes, uuidText } from './sealed-token';

/** What an unsubscribe link stands for: the user, the channel, and the message it came in (its id). */
export interface UnsubscribeClaims {
  userId: string;
  channel: MailChannel;
  /** The outbox id of the email carrying the link: each link works once. */
  tokenId: string;
}

const VERSION = 'u2';
/** user id (16 bytes), outbox id (16), channel index (1). */
const PLAIN_BYTES = 33;

/**
 * The key of unsubscribe links, derived from a session secret with a label of its own (neither the
 * cookie key nor the CSRF key). Rotation: links made with any listed secret are accepted.
 */
export function unsubscribeKey(sessionSecret: string): Buffer {
  return derivedKey(sessionSecret, 'epic-connect mail unsubscribe v2');
}

/**
 * `u2.<base64url(iv ‖ AES-256-GCM(user id ‖ outbox id ‖ channel) ‖ tag)>`: opaque (an email names no
 * record id) and authenticated (it cannot be forged or altered without the key).
 */
export function signUnsubscribeToken(claims: UnsubscribeClaims, key: Buffer): string {
  const channel = MAIL_CHANNELS.indexOf(claims.channel);
  if (!UUID.test(claims.userId) || !UUID.test(claims.tokenId) || channel < 0) {
    throw new Error('unsubscribe claims must be two uuids and a known channel');
  }
  const plain = Buffer.concat([uuidBytes(claims.userId), uuidBytes(claims.tokenId), Buffer.from([channel])]);
  return sealToken(VERSION, plain, key);
}

/** The claims of a token made with one of `keys`, or null for anything else (forged, altered, malformed). */
export function verifyUnsubscribeToken(token: unknown, keys: Buffer[]): UnsubscribeClaims | null {
  const plain = openToken(VERSION, token, keys, PLAIN_BYTES);
  if (!plain) return null;
  const channel = MAIL_CHANNELS[plain[32]];
  if (channel === undefined) return null;
  return { userId: uuidText(plain.subarray(0, 16)), tokenId: uuidText(plain.subarray(16, 32)), channel };
}
