import { AuthUser } from 'src/users/user.view';

declare global {
  namespace Express {
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type
    interface User extends AuthUser {}
    interface Request {
      /** Issues a CSRF token bound to this session (set by the CSRF middleware). */
      issueCsrfToken(): string;
      /** Set by the authentication guard from @HtmlRoutes(): render errors as pages. */
      htmlErrors?: boolean;
    }
  }
}

declare module 'express-session' {
  interface SessionData {
    csrfIssued?: boolean;
    /** One-time messages for the next page (src/common/flash.ts). */
    flash?: import('./flash').FlashMessage[];
    passport?: { user?: string };
  }
}

export {};
