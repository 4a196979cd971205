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
