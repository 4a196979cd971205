export { DEFAULT_REDIRECT_URI, FakeEpic, GENERIC_SMART_SERVER, startFakeEpic } from './fake-epic';
export {
  createClientKey,
  signClientAssertion,
  startJwksHost,
  type ClientKey,
  type JwksHost,
} from './client-keys';
export { BULK_FILES_PATH, NDJSON, type BulkDataSettings } from './bulk-data';
export { SEED, type FhirResource } from './fhir-data';
export type * from './types';
