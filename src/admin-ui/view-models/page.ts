import type { AuthUser } from 'src/users/user.view';

/**
 * Who a page is rendered for and the CSRF token of its forms. Every signed-in page carries both:
 * the layout's header names the user, and its sign-out form and `<meta name="csrf-token">` use the
 * token.
 */
export interface Viewer {
  user: AuthUser;
  csrfToken: string;
}
