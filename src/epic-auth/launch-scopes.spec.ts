import { LaunchContext, scopesFor } from './launch-scopes';

const data = 'user/Patient.read patient/Observation.read system/Encounter.read';

describe('scopesFor', () => {
  it.each<[LaunchContext, string[]]>([
    [
      'organization',
      [
        'openid',
        'fhirUser',
        'offline_access',
        'user/Patient.read',
        'user/Observation.read',
        'user/Encounter.read',
      ],
    ],
    [
      'provider',
      ['launch', 'openid', 'fhirUser', 'user/Patient.read', 'user/Observation.read', 'user/Encounter.read'],
    ],
    [
      'patient',
      [
        'launch/patient',
        'openid',
        'fhirUser',
        'offline_access',
        'patient/Patient.read',
        'patient/Observation.read',
        'patient/Encounter.read',
      ],
    ],
  ])('%s (SMART v1)', (context, expected) => {
    expect(scopesFor(context, data, 'v1')).toEqual(expected);
  });

  it('writes SMART v2 permissions, mapping .read to .rs and .write to .cud', () => {
    expect(scopesFor('patient', 'user/Patient.read user/Observation.write user/Encounter.*', 'v2')).toEqual([
      'launch/patient',
      'openid',
      'fhirUser',
      'offline_access',
      'patient/Patient.rs',
      'patient/Observation.cud',
      'patient/Encounter.cruds',
    ]);
  });

  it('reads v2 scopes and writes them as v1', () => {
    expect(
      scopesFor('provider', 'patient/Patient.rs patient/Observation.cruds user/Encounter.c', 'v1').slice(3),
    ).toEqual(['user/Patient.read', 'user/Observation.*', 'user/Encounter.write']);
  });

  it('keeps v2 search parameters and drops permissions it cannot read', () => {
    expect(
      scopesFor('organization', 'user/Observation.rs?category=laboratory user/Patient.xyz', 'v2').slice(3),
    ).toEqual(['user/Observation.rs?category=laboratory']);
  });

  it('asks for launch/patient but never a bare launch in a standalone patient request, and never mixes prefixes', () => {
    const patient = scopesFor('patient', 'launch launch/patient user/*.read', 'v1');
    expect(patient).not.toContain('launch');
    expect(patient.filter((s) => s === 'launch/patient')).toHaveLength(1);
    expect(scopesFor('patient', '', 'v1')).toContain('launch/patient');
    expect(patient.some((s) => s.startsWith('user/'))).toBe(false);
    const provider = scopesFor('provider', 'patient/*.read launch/patient', 'v1');
    expect(provider.some((s) => s.startsWith('patient/'))).toBe(false);
    expect(provider).toContain('launch/patient');
  });

  it('removes duplicates, flow scopes first', () => {
    expect(scopesFor('organization', 'openid user/Patient.read patient/Patient.read', 'v1')).toEqual([
      'openid',
      'fhirUser',
      'offline_access',
      'user/Patient.read',
    ]);
  });
});
