import { ConnectionMode, TokenAuthMethod } from './organization.types';

/**
 * The rules tying client authentication, connection mode, secret and scopes together: a backend
 * service authenticates with a JWT (Epic accepts nothing else for Backend Systems apps:
 * docs/epic-and-smart.md §9) and asks for `system/` scopes; a sign-in connection never asks for
 * `system/` scopes; a secret is not sent alongside private_key_jwt. Returns the problems by form
 * field, none when the combination is valid.
 */
export interface ClientAuthProblem {
  field: 'tokenAuthMethod' | 'clientSecret' | 'scopes';
  message: string;
}

export function checkClientAuthentication(input: {
  authMethod: TokenAuthMethod;
  mode: ConnectionMode;
  secretGiven: boolean;
  scopes: string | null;
}): ClientAuthProblem[] {
  const problems: ClientAuthProblem[] = [];
  const jwt = input.authMethod === TokenAuthMethod.PrivateKeyJwt;
  if (input.mode === ConnectionMode.Backend && !jwt) {
    problems.push({
      field: 'tokenAuthMethod',
      message:
        'A backend-service connection authenticates with private_key_jwt: choose it as the client authentication.',
    });
  }
  if (jwt && input.secretGiven) {
    problems.push({
      field: 'clientSecret',
      message:
        'clientSecret is not used with private_key_jwt: leave it blank (any stored secret is deleted).',
    });
  }
  const scopes = (input.scopes ?? '').split(' ').filter(Boolean);
  if (input.mode === ConnectionMode.Backend) {
    const bad = scopes.filter((scope) => !scope.startsWith('system/'));
    if (bad.length > 0) {
      problems.push({
        field: 'scopes',
        message: `A backend-service connection asks for system/ scopes only, not: ${bad.join(' ')}`,
      });
    }
  } else {
    const bad = scopes.filter((scope) => scope.startsWith('system/'));
    if (bad.length > 0) {
      problems.push({
        field: 'scopes',
        message: `system/ scopes are for backend-service connections only, not a sign-in: ${bad.join(' ')}`,
      });
    }
  }
  return problems;
}
