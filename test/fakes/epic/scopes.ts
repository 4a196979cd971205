import type { FakeEpicAudience } from './types';

const SEEDED_TYPES = ['Patient', 'Observation', 'Encounter', 'Practitioner'];

const PREFIX: Record<FakeEpicAudience, string> = { patient: 'patient', provider: 'user', backend: 'system' };

export function defaultScopes(audience: FakeEpicAudience): string[] {
  return SEEDED_TYPES.map((type) => `${PREFIX[audience]}/${type}.read`);
}

/** Request scopes that are echoed when asked for (OIDC and launch context), besides the registered ones. */
const ECHOED = new Set(['openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'launch/encounter']);

export function splitScope(scope: string | undefined): string[] {
  return (scope ?? '').split(' ').filter((s) => s.length > 0);
}

/**
 * The scopes a token gets (docs/epic-and-smart.md §4, §5, §8): Epic grants the scopes of the APIs registered
 * for the client whatever was requested; `offline_access` may not be echoed; the sandbox repeats
 * `.Read`/`.read` case variants.
 */
export function grantScopes(
  registered: string[],
  requested: string[],
  options: { echoOfflineAccess: boolean; duplicateScopeCase: boolean },
): string[] {
  const granted: string[] = [];
  for (const scope of registered) {
    const variant = scope.endsWith('.read') ? `${scope.slice(0, -'.read'.length)}.Read` : undefined;
    if (options.duplicateScopeCase && variant) granted.push(variant);
    granted.push(scope);
  }
  for (const scope of requested) {
    if (ECHOED.has(scope) || (scope === 'offline_access' && options.echoOfflineAccess)) granted.push(scope);
  }
  return [...new Set(granted)];
}

const RESOURCE_SCOPE = /^(patient|user|system)\/(\*|[A-Za-z]+)\.([A-Za-z*]+)(\?.*)?$/;

/** What a FHIR request does, as SMART scopes name it. */
export type FhirInteraction = 'read' | 'search' | 'create' | 'update' | 'delete';

/** The SMART v2 letter of each interaction (c, r, u, d, s). */
const V2_LETTER: Record<FhirInteraction, string> = {
  create: 'c',
  read: 'r',
  update: 'u',
  delete: 'd',
  search: 's',
};

/**
 * Whether the scopes allow an interaction on a resource type. SMART v1 `.read`/`.Read` allows
 * reading and searching, `.write`/`.Write` creating, updating and deleting, `.*` all; v2 needs the
 * interaction's letter (`cruds`) (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
 * `patientOnly`: only `patient/` scopes allow it, so access is limited to the token's patient.
 */
export function scopeAllows(
  scopes: string[],
  resourceType: string,
  interaction: FhirInteraction,
): { allowed: boolean; patientOnly: boolean } {
  let viaPatient = false;
  let viaOther = false;
  for (const scope of scopes) {
    const match = RESOURCE_SCOPE.exec(scope);
    if (!match) continue;
    const [, context, type, permission] = match;
    if (type !== '*' && type !== resourceType) continue;
    const reads = interaction === 'read' || interaction === 'search';
    const v1 = ['*', ...(reads ? ['read', 'Read'] : ['write', 'Write'])].includes(permission);
    const v2 = /^c?r?u?d?s?$/.test(permission) && permission.includes(V2_LETTER[interaction]);
    if (!v1 && !v2) continue;
    if (context === 'patient') viaPatient = true;
    else viaOther = true;
  }
  return { allowed: viaPatient || viaOther, patientOnly: viaPatient && !viaOther };
}
