import { describeInteropProfiles, InteropProfile } from './interop-flows';

/**
 * Epic as documented, and Epic variants in how it encodes, rotates and answers.
 * Every flow runs against each server behaviour below (interop-flows.ts).
 */
const PROFILES: InteropProfile[] = [
  { name: 'Epic as documented (form-urlencoded Basic, static refresh tokens)', server: {} },
  { name: 'Basic credentials compared as sent (not form-decoded)', server: { basicAuthDecoding: 'raw' } },
  { name: 'rolling refresh tokens', server: {}, refreshMode: 'rolling' },
  {
    name: 'an id_token without aud on refresh, with rolling refresh tokens',
    server: { idTokenOnRefresh: 'no-aud' },
    refreshMode: 'rolling',
  },
];

describeInteropProfiles('Epic variants', PROFILES);
