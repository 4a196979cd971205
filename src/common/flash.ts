import type { Session, SessionData } from 'express-session';

/** A one-time message shown on the next page (after a redirect, e.g. at sign-in). */
export interface FlashMessage {
  level: 'info' | 'success' | 'warning' | 'error';
  text: string;
  link?: { href: string; label: string };
}

type FlashSession = Session & Partial<SessionData>;

export function addFlash(session: FlashSession, ...messages: FlashMessage[]): void {
  if (messages.length === 0) return;
  session.flash = [...(session.flash ?? []), ...messages].slice(-10);
}

/** The pending messages, removed from the session. */
export function takeFlash(session: FlashSession | undefined): FlashMessage[] {
  const messages = session?.flash ?? [];
  if (session?.flash) delete session.flash;
  return messages;
}

/**
 * Writes the session to the store now. Await it after addFlash and before a redirect:
 * express-session sends a response's headers before its own store write completes, so a browser
 * following the Location at once can load the session without the message.
 */
export function saveSession(session: FlashSession): Promise<void> {
  return new Promise((resolve, reject) =>
    session.save((err?: unknown) => (err ? reject(toError(err)) : resolve())),
  );
}

const toError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));
