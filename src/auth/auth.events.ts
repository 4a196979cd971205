import type { FlashMessage } from 'src/common/flash';
import type { AuthUser } from 'src/users/user.view';

/** Events the Auth module emits; other modules react without Auth importing them. */
export enum AuthEvents {
  /** A user signed in. Listeners may add notices shown on the first page (awaited). */
  SignedIn = 'auth.signed-in',
}

export interface SignedInEvent {
  user: AuthUser;
  /** Listeners push what the user should see first (e.g. "Epic connection has expired"). */
  notices: FlashMessage[];
}
