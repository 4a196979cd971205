import { classifyRefreshFailure, describeClientCredentialsFailure, describeTokenError } from './token-errors';

/** Shapes of openid-client errors: ResponseBodyError (error, status), TimeoutError, fetch's TypeError. */
const oauth = (error: string, status = 400) =>
  Object.assign(new Error('server responded with an error'), { error, status });
const timeout = () => Object.assign(new Error('timed out'), { name: 'TimeoutError' });
const httpStatus = (status: number) =>
  Object.assign(new Error('unexpected HTTP response status code'), { cause: { status } });

describe('classifyRefreshFailure', () => {
  it.each(['invalid_grant', 'invalid_client', 'unauthorized_client'])(
    '%s is terminal, named, and says to re-authenticate',
    (code) => {
      const failure = classifyRefreshFailure(oauth(code));
      expect(failure).toMatchObject({ kind: 'terminal', reason: code, code });
      expect(failure.message).toContain(code);
      expect(failure.message).toMatch(/Re-authenticate/);
    },
  );

  it('other OAuth errors keep the tokens: they point at something to fix, not at dead tokens', () => {
    for (const code of ['invalid_scope', 'invalid_request']) {
      const failure = classifyRefreshFailure(oauth(code));
      expect(failure).toMatchObject({ kind: 'transient', code });
      expect(failure.message).toMatch(/tokens were kept/);
    }
  });

  it('a 429 or 5xx is transient whatever its body says (a rate limiter in front of Epic)', () => {
    expect(classifyRefreshFailure(oauth('rate_limit_exceeded', 429))).toMatchObject({ kind: 'transient' });
    expect(classifyRefreshFailure(oauth('invalid_grant', 429))).toMatchObject({ kind: 'transient' });
    expect(classifyRefreshFailure(oauth('invalid_client', 503))).toMatchObject({ kind: 'transient' });
    expect(classifyRefreshFailure(oauth('invalid_client', 401))).toMatchObject({ kind: 'terminal' });
  });

  it.each([400, 401, 403, 404, 410])(
    'classifies by the OAuth error, not the status: invalid_grant with HTTP %d is terminal',
    (status) => {
      expect(classifyRefreshFailure(oauth('invalid_grant', status))).toMatchObject({
        kind: 'terminal',
        reason: 'invalid_grant',
      });
    },
  );

  it('a 4xx without an OAuth JSON body (a proxy page) stays transient', () => {
    expect(classifyRefreshFailure(httpStatus(403))).toMatchObject({ kind: 'transient', code: 'http_403' });
  });

  it('an answer openid-client could not use is not called a network failure', () => {
    const unusable = Object.assign(new Error('unexpected JWT "aud" (audience) claim value'), {
      code: 'OAUTH_JWT_CLAIM_COMPARISON_FAILED',
    });
    const failure = classifyRefreshFailure(unusable);
    expect(failure).toMatchObject({ kind: 'transient', code: 'invalid_response' });
    expect(failure.message).not.toMatch(/reached|network/);
    expect(classifyRefreshFailure(new TypeError('fetch failed')).message).toMatch(/could not be reached/);
  });

  it('timeouts, HTTP errors without an OAuth body, and network failures are transient', () => {
    expect(classifyRefreshFailure(timeout())).toMatchObject({ kind: 'transient', code: 'timeout' });
    expect(classifyRefreshFailure(httpStatus(503))).toMatchObject({ kind: 'transient', code: 'http_503' });
    expect(classifyRefreshFailure(httpStatus(400))).toMatchObject({ kind: 'transient', code: 'http_400' });
    expect(classifyRefreshFailure(new TypeError('fetch failed'))).toMatchObject({
      kind: 'transient',
      code: 'network',
    });
  });

  it("never puts Epic's error_description into the message", () => {
    const error = Object.assign(oauth('invalid_grant'), {
      error_description: 'token tEsTsEcReT-abc expired',
    });
    expect(classifyRefreshFailure(error).message).not.toContain('tEsTsEcReT');
  });
});

describe('describeTokenError (authorization code exchange)', () => {
  it('explains invalid_grant as a spent or expired code', () => {
    expect(describeTokenError(oauth('invalid_grant'))).toMatch(/authorization code.*Connect again/);
  });

  it('explains timeouts and HTTP failures', () => {
    expect(describeTokenError(timeout())).toMatch(/did not answer in time/);
    expect(describeTokenError(httpStatus(502))).toMatch(/HTTP 502/);
  });
});

describe('describeClientCredentialsFailure', () => {
  it('says an unauthorized_client backend client is not mapped to an Epic user, and needs no sign-in', () => {
    const failure = describeClientCredentialsFailure(oauth('unauthorized_client'));
    expect(failure.code).toBe('unauthorized_client');
    expect(failure.message).toMatch(/not mapped this client ID to an Epic user/);
    expect(failure.message).toMatch(/no sign-in is needed/);
  });

  it('points an invalid_client at the JWK Set URL', () => {
    expect(describeClientCredentialsFailure(oauth('invalid_client', 401)).message).toMatch(/JWK Set URL/);
  });

  it('keeps the transient codes of timeouts and HTTP failures', () => {
    expect(describeClientCredentialsFailure(timeout())).toEqual({
      code: 'timeout',
      message: expect.stringMatching(/did not answer in time/),
    });
    expect(describeClientCredentialsFailure(httpStatus(503)).code).toBe('http_503');
    expect(describeClientCredentialsFailure(oauth('invalid_scope')).message).toMatch(/invalid_scope/);
  });
});
