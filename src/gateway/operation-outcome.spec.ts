import { BadRequestException, ForbiddenException } from '@nestjs/common';

import { DomainError, ErrorCode } from 'src/common/errors/domain-error';
import { toErrorResponse } from 'src/common/errors/error-response';
import { FhirClientError, FhirErrorKind } from 'src/fhir-client/fhir-client.errors';

import { GatewayError } from './gateway.errors';
import { ERROR_CODE_SYSTEM, toOperationOutcome } from './operation-outcome';

const render = (exception: unknown) => toOperationOutcome(exception, toErrorResponse(exception));
const issue = (exception: unknown) => render(exception).body.issue[0];

describe('the gateway renders errors as OperationOutcomes', () => {
  it('keeps the code and message of the common description', () => {
    const answer = render(new DomainError(ErrorCode.Unauthenticated, 'Unknown API key.'));
    expect(answer).toEqual({
      status: 401,
      body: {
        resourceType: 'OperationOutcome',
        issue: [
          {
            severity: 'error',
            code: 'login',
            details: { coding: [{ system: ERROR_CODE_SYSTEM, code: 'UNAUTHENTICATED' }] },
            diagnostics: 'Unknown API key.',
          },
        ],
      },
    });
  });

  it.each<[string, unknown, number, string]>([
    ['a refused permission', new GatewayError(ErrorCode.Forbidden, 'read only'), 403, 'forbidden'],
    ["Nest's 403", new ForbiddenException('no'), 403, 'forbidden'],
    ['a bad request', new BadRequestException(['query must not contain control characters']), 400, 'invalid'],
    [
      'a method outside FHIR',
      new GatewayError(ErrorCode.BadRequest, 'x', { status: 405, issue: 'not-supported' }),
      405,
      'not-supported',
    ],
    [
      'an oversized body',
      new GatewayError(ErrorCode.BadRequest, 'x', { status: 413, issue: 'too-costly' }),
      413,
      'too-costly',
    ],
    [
      'throttling (the seam)',
      new DomainError(ErrorCode.RateLimited, 'Too many requests.', { retryAfterSeconds: 3 }),
      429,
      'throttled',
    ],
    ['not connected', new FhirClientError(FhirErrorKind.NotConnected, 'Connect it.'), 503, 'no-store'],
    [
      'needs re-authentication',
      new FhirClientError(FhirErrorKind.ReauthenticationRequired, 'Sign in.'),
      503,
      'expired',
    ],
    [
      'a user connection that ended',
      new GatewayError(ErrorCode.ReauthenticationRequired, 'ended'),
      503,
      'expired',
    ],
    ['a connection in error', new FhirClientError(FhirErrorKind.Unavailable, 'Failing.'), 503, 'transient'],
    [
      'an unreachable server',
      new FhirClientError(FhirErrorKind.Unavailable, 'x', { network: 'unreachable' }),
      502,
      'transient',
    ],
    [
      'a server too slow',
      new FhirClientError(FhirErrorKind.Unavailable, 'x', { network: 'timeout' }),
      504,
      'timeout',
    ],
    [
      'a request that cannot be sent',
      new FhirClientError(FhirErrorKind.Request, 'Not a FHIR path.'),
      400,
      'invalid',
    ],
    ['a bug', new Error('secret detail'), 500, 'exception'],
  ])('%s', (_case, exception, status, code) => {
    const answer = render(exception);
    expect(answer.status).toBe(status);
    expect(answer.body.issue[0]).toMatchObject({ severity: 'error', code });
  });

  it('says the connection state in words, as the consoles do', () => {
    expect(issue(new FhirClientError(FhirErrorKind.NotConnected, 'Connect it.')).diagnostics).toBe(
      'Connection state: Not connected. Connect it.',
    );
    expect(issue(new FhirClientError(FhirErrorKind.ReauthenticationRequired, 'Sign in.')).diagnostics).toBe(
      'Connection state: Expired, needs re-authentication. Sign in.',
    );
  });

  it('never shows what a bug said', () => {
    expect(issue(new Error('password=hunter2')).diagnostics).toBe('Internal server error');
  });
});
