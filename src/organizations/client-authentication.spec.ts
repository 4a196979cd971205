import { checkClientAuthentication } from './client-authentication';
import { ConnectionMode, TokenAuthMethod } from './organization.types';

const base = {
  authMethod: TokenAuthMethod.ClientSecretBasic,
  mode: ConnectionMode.Interactive,
  secretGiven: false,
  scopes: null,
};

describe('checkClientAuthentication', () => {
  it('accepts a sign-in connection with a secret and user scopes', () => {
    expect(checkClientAuthentication({ ...base, secretGiven: true, scopes: 'user/Patient.read' })).toEqual(
      [],
    );
  });

  it('accepts a backend service with private_key_jwt and system scopes, or the defaults', () => {
    const backend = { ...base, authMethod: TokenAuthMethod.PrivateKeyJwt, mode: ConnectionMode.Backend };
    expect(
      checkClientAuthentication({ ...backend, scopes: 'system/Patient.read system/Observation.rs' }),
    ).toEqual([]);
    expect(checkClientAuthentication(backend)).toEqual([]);
  });

  it('refuses a backend service that would authenticate with a secret', () => {
    expect(checkClientAuthentication({ ...base, mode: ConnectionMode.Backend })).toEqual([
      { field: 'tokenAuthMethod', message: expect.stringContaining('authenticates with private_key_jwt') },
    ]);
  });

  it('refuses a secret sent along with private_key_jwt', () => {
    expect(
      checkClientAuthentication({ ...base, authMethod: TokenAuthMethod.PrivateKeyJwt, secretGiven: true }),
    ).toEqual([
      {
        field: 'clientSecret',
        message: expect.stringContaining('clientSecret is not used with private_key_jwt'),
      },
    ]);
  });

  it('names the scopes that do not fit the connection mode', () => {
    expect(
      checkClientAuthentication({
        ...base,
        authMethod: TokenAuthMethod.PrivateKeyJwt,
        mode: ConnectionMode.Backend,
        scopes: 'system/Patient.read user/Observation.read',
      }),
    ).toEqual([
      {
        field: 'scopes',
        message: 'A backend-service connection asks for system/ scopes only, not: user/Observation.read',
      },
    ]);
    expect(checkClientAuthentication({ ...base, scopes: 'user/Patient.read system/Encounter.read' })).toEqual(
      [
        {
          field: 'scopes',
          message:
            'system/ scopes are for backend-service connections only, not a sign-in: system/Encounter.read',
        },
      ],
    );
  });
});
