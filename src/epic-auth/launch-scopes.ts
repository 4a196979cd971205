/**
 * The scopes each kind of authorization asks Epic for (docs/epic-and-smart.md §7, §8):
 * - `organization`: an admin connects the organization: `openid fhirUser offline_access` + `user/…`;
 * - `provider`: EHR launch from inside Epic: `launch openid fhirUser` + `user/…` (no offline access:
 *   the token outlives the session, docs/epic-and-smart.md §5);
 * - `patient`: standalone patient launch (MyChart): `launch/patient openid fhirUser offline_access`
 *   + `patient/…`. `launch/patient` asks a SMART server for the patient context (SMART App Launch,
 *   "Scopes for requesting context data": https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html);
 *   Epic sends `patient` to patient-facing apps anyway. Never a bare `launch`: that needs an EHR launch.
 * Data scopes are registered once per organization (any prefix) and rewritten for the context, in
 * the organization's SMART syntax: v1 (`.read`/`.write`) or v2 (`.rs`, `.cud`…; Epic from Aug 2024).
 */
export type LaunchContext = 'organization' | 'provider' | 'patient';
export type ScopeSyntax = 'v1' | 'v2';

const FLOW_SCOPES: Record<LaunchContext, string[]> = {
  organization: ['openid', 'fhirUser', 'offline_access'],
  provider: ['launch', 'openid', 'fhirUser'],
  patient: ['launch/patient', 'openid', 'fhirUser', 'offline_access'],
};

const PREFIX: Record<LaunchContext, 'user' | 'patient'> = {
  organization: 'user',
  provider: 'user',
  patient: 'patient',
};

/** `user/Observation.read`, `patient/*.rs`, `system/Patient.cruds?category=…` */
const DATA_SCOPE = /^(user|patient|system)\/([A-Za-z]+|\*)\.([a-z*]+)(\?.*)?$/;

/** A v1 or v2 permission as the set of v2 letters it grants. */
function permissions(perm: string): Set<string> | null {
  if (perm === 'read') return new Set(['r', 's']);
  if (perm === 'write') return new Set(['c', 'u', 'd']);
  if (perm === '*') return new Set(['c', 'r', 'u', 'd', 's']);
  if (/^c?r?u?d?s?$/.test(perm) && perm.length > 0) return new Set(perm);
  return null;
}

function render(letters: Set<string>, syntax: ScopeSyntax): string[] {
  if (syntax === 'v2') return [['c', 'r', 'u', 'd', 's'].filter((l) => letters.has(l)).join('')];
  const read = letters.has('r') || letters.has('s');
  const write = letters.has('c') || letters.has('u') || letters.has('d');
  return read && write ? ['*'] : read ? ['read'] : write ? ['write'] : [];
}

/**
 * The scopes to request, flow scopes first, without duplicates. Data scopes that are not SMART
 * resource scopes (e.g. `launch/encounter`) are kept as they are, except a bare `launch` in a
 * patient standalone request. Patient requests never carry `user/` scopes, provider and organization
 * requests never `patient/` ones.
 */
export function scopesFor(context: LaunchContext, dataScopes: string, syntax: ScopeSyntax = 'v1'): string[] {
  const out = [...FLOW_SCOPES[context]];
  for (const scope of dataScopes.split(/\s+/).filter(Boolean)) {
    const match = DATA_SCOPE.exec(scope);
    if (!match) {
      if (context === 'patient' && scope === 'launch') continue;
      out.push(scope);
      continue;
    }
    const [, , resource, perm, query = ''] = match;
    const letters = permissions(perm);
    if (!letters) continue;
    for (const rendered of render(letters, syntax)) {
      out.push(`${PREFIX[context]}/${resource}.${rendered}${query}`);
    }
  }
  return [...new Set(out)];
}
