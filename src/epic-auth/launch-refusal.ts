import { EpicAuthError, EpicAuthErrorCode } from './epic-auth.errors';

/** No user signs in through a Backend Systems client (client_credentials only: docs/epic-and-smart.md §9). */
export const BACKEND_NO_LAUNCH =
  'This organization connects to Epic as a backend service, so its Epic client cannot sign users in. Ask your administrator for a launch-enabled app.';

/** A launch that cannot start: a 400 page and no redirect. */
export function launchRefused(message: string): EpicAuthError {
  return new EpicAuthError(EpicAuthErrorCode.LaunchRefused, message);
}
