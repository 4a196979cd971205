import { describeInteropProfiles, InteropProfile } from './interop-flows';

/**
 * Servers that answer errors, lifetimes and patient context differently from Epic's defaults.
 * Every flow runs against each server behaviour below (interop-flows.ts).
 */
const PROFILES: InteropProfile[] = [
  { name: 'invalid_grant answered with HTTP 403', server: { invalidGrantStatus: 403 } },
  {
    name: 'Basic compared as sent, invalid_client with 401 and a WWW-Authenticate challenge',
    server: { basicAuthDecoding: 'raw', invalidClientStatus: 401 },
  },
  { name: '30-second access tokens', server: { accessTokenLifetimeSeconds: 30 } },
  { name: '5-minute access tokens', server: { accessTokenLifetimeSeconds: 300 } },
  { name: 'patient context only with launch/patient', server: { patientContext: 'launch-patient-scope' } },
  {
    name: 'a token endpoint that fetches the JWK Set during every call',
    server: { clientJwksCache: 'fetch-every-call' },
  },
];

describeInteropProfiles('error statuses, token lifetimes, patient context, JWK Set fetching', PROFILES);
