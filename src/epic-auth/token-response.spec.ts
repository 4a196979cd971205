import { parseTokenResponse } from './token-response';

const now = new Date('2026-11-23T10:00:00.000Z');

describe('parseTokenResponse', () => {
  it("reads Epic's response, de-duplicating scope variants and keying refreshability off refresh_token", () => {
    const parsed = parseTokenResponse(
      {
        access_token: 'a',
        token_type: 'bearer',
        expires_in: 3600,
        scope: 'openid fhirUser user/Patient.read user/Patient.Read',
        refresh_token: 'r', // offline_access not echoed in scope
        need_patient_banner: 'false',
        '__epic.dstu2.patient': 'dstu2-id',
      },
      now,
    );
    expect(parsed).toEqual({
      accessToken: 'a',
      refreshToken: 'r',
      expiresAt: new Date('2026-11-23T11:00:00.000Z'),
      issuedAt: now,
      refreshExpiresAt: null,
      scopes: ['openid', 'fhirUser', 'user/Patient.read'],
      patientId: 'dstu2-id',
      encounterId: null,
    });
  });

  it('prefers the R4 patient id and tolerates a missing expires_in and refresh token', () => {
    const parsed = parseTokenResponse({ access_token: 'a', patient: 'r4', '__epic.dstu2.patient': 'd' }, now);
    expect(parsed.patientId).toBe('r4');
    expect(parsed.refreshToken).toBeNull();
    expect(parsed.expiresAt).toEqual(new Date('2026-11-23T10:05:00.000Z'));
  });

  it('refuses a response without an access token', () => {
    expect(() => parseTokenResponse({ token_type: 'bearer' }, now)).toThrow(/no access_token/);
  });

  it('keeps the refresh token end when a server sends refresh_token_expires_in', () => {
    const parsed = parseTokenResponse(
      { access_token: 'a', expires_in: 3600, refresh_token: 'r', refresh_token_expires_in: 86400 },
      now,
    );
    expect(parsed.refreshExpiresAt).toEqual(new Date('2026-11-24T10:00:00.000Z'));
    expect(
      parseTokenResponse({ access_token: 'a', refresh_token_expires_in: 86400 }, now).refreshExpiresAt,
    ).toBeNull();
  });
});
