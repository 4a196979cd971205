import { createHash, randomBytes } from 'node:crypto';

import { Request, Response } from 'express';

import { PENDING_TTL_MS } from './authorization.types';

/**
 * Binds every authorization this service starts to the browser that started it (RFC 9700 §4.7.1,
 * "CSRF protection"; §4.5 on authorization-code injection): a random value in an HttpOnly cookie,
 * set at the start and required at the callback next to the server-side state. A callback URL
 * carried to another browser (sign-in CSRF: an attacker's patient signing in a victim) finds no
 * cookie and is refused.
 *
 * One value per browser, shared by all its starts (several launches may be in flight), so the
 * cookie's path is `/`: the start routes must read it too. Over https it is `SameSite=None; Secure`, so
 * it would also travel in a third-party frame (the CSP's frame-ancestors 'none' forbids framing today);
 * over plain http (local development) it is `SameSite=Lax`, which top-level redirects from the
 * authorization server carry.
 */
/**
 * Over https the cookie carries the `__Host-` prefix: the browser then accepts it only from this
 * host, Secure, with Path=/ and no Domain, so a sibling subdomain cannot plant a value of its own
 * (cookie fixation) and replay an authorization it started with it (RFC 6265bis §4.1.3.2).
 */
export const bindingCookieName = (secure: boolean): string =>
  secure ? '__Host-epic_connect_auth' : 'epic_connect_auth';

const VALUE = /^[A-Za-z0-9_-]{43}$/;

/** The browser's binding value, set (or renewed) on the response; one per browser, shared by its starts. */
export function bindBrowser(req: Request, res: Response, secure: boolean): string {
  const value = presentedBinding(req, secure) || randomBytes(32).toString('base64url');
  res.cookie(bindingCookieName(secure), value, {
    httpOnly: true,
    secure,
    sameSite: secure ? 'none' : 'lax',
    path: '/',
    maxAge: PENDING_TTL_MS,
  });
  return value;
}

/** The binding the callback's browser presents (empty when it has none). */
export function presentedBinding(req: Request, secure: boolean): string {
  const cookies = req.cookies as Record<string, unknown> | undefined;
  const value = cookies?.[bindingCookieName(secure)];
  return typeof value === 'string' && VALUE.test(value) ? value : '';
}

/** Stored with the pending authorization: the cookie's value never lands in the database. */
export const hashBinding = (value: string): string => createHash('sha256').update(value).digest('hex');
