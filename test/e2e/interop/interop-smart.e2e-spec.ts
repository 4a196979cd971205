import { GENERIC_SMART_SERVER } from 'test/fakes/epic';

import { describeInteropProfiles, InteropProfile } from './interop-flows';

/**
 * A generic SMART on FHIR server (as the SMART Health IT launcher behaves): nothing Epic-shaped.
 * Every flow runs against each server behaviour below (interop-flows.ts).
 */
const PROFILES: InteropProfile[] = [
  { name: 'a generic SMART server', server: GENERIC_SMART_SERVER, refreshMode: 'rolling' },
  {
    name: 'a generic SMART server with 30-second tokens',
    server: { ...GENERIC_SMART_SERVER, accessTokenLifetimeSeconds: 30 },
    refreshMode: 'rolling',
  },
];

describeInteropProfiles('a generic SMART server', PROFILES);
