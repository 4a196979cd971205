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

/**
 * Whether the scopes allow reading or searching a resource type. SMART v1 `.read`/`.Read`/`.*` allows both;
 * v2 needs `r` to read and `s` to search (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
 * `patientOnly`: only `patient/` scopes allow it, so access is limited to the token's patient.
 */
export function scopeAllows(
  scopes: string[],
  resourceType: string,
  interaction: 'read' | 'search',
): { allowed: boolean; patientOnly: boolean } {
  let viaPatient = false;
  let viaOther = false;
  for (const scope of scopes) {
    const match = RESOURCE_SCOPE.exec(scope);
    if (!match) continue;
    const [, context, type, permission] = match;
    if (type !== '*' && type !== resourceType) continue;
    const v1 = ['read', 'Read', '*'].includes(permission);
    const v2 = /^c?r?u?d?s?$/.test(permission) && permission.includes(interaction === 'read' ? 'r' : 's');
    if (!v1 && !v2) continue;
    if (context === 'patient') viaPatient = true;
    else viaOther = true;
  }
  return { allowed: viaPatient || viaOther, patientOnly: viaPatient && !viaOther };
}
