import {
  ASSERTION_BACKDATE_SECONDS,
  ASSERTION_LIFETIME_SECONDS,
  AssertionHeader,
  AssertionPayload,
  shapeClientAssertion,
} from './client-assertion';

describe('shapeClientAssertion', () => {
  const tokenEndpoint = 'https://epic.example.org/interconnect/oauth2/token';
  const now = 1_800_000_000;

  function shaped(): { header: AssertionHeader; payload: AssertionPayload } {
    // What oauth4webapi hands over: the issuer as aud, now as iat/nbf, now + 60 as exp.
    const header: AssertionHeader = { alg: 'ES384', kid: undefined };
    const payload: AssertionPayload = {
      iss: 'client-1',
      sub: 'client-1',
      aud: 'https://epic.example.org/interconnect/oauth2',
      jti: 'random-jti',
      iat: now,
      nbf: now,
      exp: now + 60,
    };
    shapeClientAssertion(header, payload, { tokenEndpoint, kid: 'key-1', nowSeconds: now + 0.7 });
    return { header, payload };
  }

  it('sends the exact token endpoint as aud and names the signing key', () => {
    const { header, payload } = shaped();
    expect(payload.aud).toBe(tokenEndpoint);
    expect(header).toEqual({ alg: 'ES384', kid: 'key-1', typ: 'JWT' });
  });

  it('keeps iss, sub and jti from the library', () => {
    const { payload } = shaped();
    expect(payload).toMatchObject({ iss: 'client-1', sub: 'client-1', jti: 'random-jti' });
  });

  it('back-dates iat and nbf and keeps exp within Epic’s five minutes of both iat and now', () => {
    const { payload } = shaped();
    expect(payload.iat).toBe(now - ASSERTION_BACKDATE_SECONDS);
    expect(payload.nbf).toBe(payload.iat);
    expect(payload.exp! - payload.iat!).toBe(ASSERTION_LIFETIME_SECONDS);
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(300);
    expect(payload.exp!).toBeGreaterThan(now);
    expect(payload.exp! - now).toBeLessThanOrEqual(300);
  });
});
