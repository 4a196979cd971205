import {
  BadRequestException,
  ConflictException,
  ForbiddenException,
  HttpException,
  NotFoundException,
  ServiceUnavailableException,
} from '@nestjs/common';
import { ThrottlerException } from '@nestjs/throttler';

import { DomainError, ErrorCode } from './domain-error';
import { toErrorResponse } from './error-response';
import { validationFailed } from './field-errors';

describe('toErrorResponse (the one mapping every transport renders)', () => {
  it('answers a DomainError with the status of its code, and keeps its cause out of the body', () => {
    const error = new DomainError(ErrorCode.NotConnected, 'Connect it first.', {
      cause: new Error('secret upstream detail'),
      organizationId: 'org-1',
    });
    const sut = toErrorResponse(error);
    expect(sut).toEqual({
      status: 409,
      code: ErrorCode.NotConnected,
      body: { statusCode: 409, code: 'NOT_CONNECTED', message: 'Connect it first.' },
      messages: ['Connect it first.'],
      retryAfterSeconds: undefined,
      organizationId: 'org-1',
      unexpected: false,
    });
    expect(JSON.stringify(sut.body)).not.toContain('secret upstream detail');
  });

  it('passes on Retry-After', () => {
    const error = new DomainError(ErrorCode.EpicUnavailable, 'Try later.', { retryAfterSeconds: 120 });
    expect(toErrorResponse(error)).toMatchObject({ status: 503, retryAfterSeconds: 120 });
  });

  it('answers field errors with every message and the fields', () => {
    const sut = toErrorResponse(validationFailed({ name: ['name is empty'], slug: ['slug a', 'slug b'] }));
    expect(sut.status).toBe(400);
    expect(sut.body).toEqual({
      statusCode: 400,
      code: 'VALIDATION_FAILED',
      message: ['name is empty', 'slug a', 'slug b'],
      fields: { name: ['name is empty'], slug: ['slug a', 'slug b'] },
    });
    expect(sut.messages).toEqual(['name is empty', 'slug a', 'slug b']);
  });

  it.each([
    [new NotFoundException('Organization not found'), 404, 'NOT_FOUND', 'Organization not found'],
    [new ConflictException('Slug taken'), 409, 'CONFLICT', 'Slug taken'],
    [
      new ForbiddenException('You do not have access to this page'),
      403,
      'FORBIDDEN',
      'You do not have access to this page',
    ],
    [
      new BadRequestException(['a must be b', 'c must be d']),
      400,
      'BAD_REQUEST', // names no field: VALIDATION_FAILED always has `fields`
      ['a must be b', 'c must be d'],
    ],
    [
      new BadRequestException({ message: ['a must be b'], fields: { a: ['a must be b'] } }),
      400,
      'VALIDATION_FAILED',
      ['a must be b'],
    ],
    [new HttpException('Sign in required', 401), 401, 'UNAUTHENTICATED', 'Sign in required'],
    [new ThrottlerException(), 429, 'RATE_LIMITED', 'ThrottlerException: Too Many Requests'],
  ])('gives an HttpException the code of its status: %p', (exception, status, code, message) => {
    const sut = toErrorResponse(exception);
    expect(sut).toMatchObject({ status, code, unexpected: false });
    expect(sut.body).toMatchObject({ statusCode: status, code, message });
  });

  it("keeps an HttpException's own members (a health check's details)", () => {
    const health = new ServiceUnavailableException({
      status: 'error',
      error: { database: { status: 'down' } },
    });
    const sut = toErrorResponse(health);
    expect(sut.body).toMatchObject({
      statusCode: 503,
      code: 'INTERNAL_ERROR',
      status: 'error',
      error: { database: { status: 'down' } },
    });
  });

  it('answers anything else with a generic 500 that shows nothing of it', () => {
    const sut = toErrorResponse(new TypeError('cannot read properties of undefined (reading "token")'));
    expect(sut).toEqual({
      status: 500,
      code: ErrorCode.Internal,
      body: { statusCode: 500, code: 'INTERNAL_ERROR', message: 'Internal server error' },
      messages: ['Internal server error'],
      unexpected: true,
    });
  });

  it("keeps a 500 of ours to the log: its message (a key id, an operator's instruction) is not shown", () => {
    const unreadable = new DomainError(
      ErrorCode.SecretUnreadable,
      'A stored secret was encrypted with the key "k-2025-01", which ENCRYPTION_KEYS does not list: add it back.',
    );
    const sut = toErrorResponse(unreadable);
    expect(sut).toMatchObject({
      status: 500,
      code: 'SECRET_UNREADABLE',
      messages: ['Internal server error'],
    });
    expect(JSON.stringify(sut.body)).not.toContain('k-2025-01');
    // An upstream failure (502, 503) still says what happened: it is for the admin to act on.
    const upstream = toErrorResponse(
      new DomainError(ErrorCode.EpicUnavailable, 'Epic did not answer in time.'),
    );
    expect(upstream.body.message).toBe('Epic did not answer in time.');
  });
});
