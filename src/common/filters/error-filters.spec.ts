import { ArgumentsHost, Logger, NotFoundException } from '@nestjs/common';
import { ThrottlerException } from '@nestjs/throttler';
import { Request, Response } from 'express';

import { LoginRequiredException } from 'src/common/errors';
import { DomainError, ErrorCode } from 'src/common/errors/domain-error';
import { validationFailed } from 'src/common/errors/field-errors';
import { EpicAuthError, EpicAuthErrorCode } from 'src/epic-auth/epic-auth.errors';
import { FhirClientError, FhirErrorKind } from 'src/fhir-client/fhir-client.errors';
import { Role } from 'src/users/user.types';

import { backLink } from './error-answer';
import { HttpErrorFilter } from './http-error.filter';

const ORG = '6f1c1f7e-8f0a-4d5e-9a51-3b1f0f5b2a10';
const OTHER = '0b5d2c8e-2f43-4b8e-8a2e-1c6d7e9f0a11';

interface Sent {
  status?: number;
  json?: unknown;
  view?: string;
  locals?: Record<string, unknown>;
  redirect?: [number, string];
  headers: Record<string, string>;
}

/** A request as the guards leave it, and a response that records what the filter sent. */
function exchange(req: Partial<Request>): { host: ArgumentsHost; sent: Sent } {
  const sent: Sent = { headers: {} };
  const res = {
    headersSent: false,
    status(code: number) {
      sent.status = code;
      return res;
    },
    json(body: unknown) {
      sent.json = body;
    },
    render(view: string, locals: Record<string, unknown>) {
      sent.view = view;
      sent.locals = locals;
    },
    redirect(code: number, url: string) {
      sent.redirect = [code, url];
    },
    setHeader(name: string, value: string) {
      sent.headers[name.toLowerCase()] = value;
    },
    getHeader(name: string) {
      return sent.headers[name.toLowerCase()];
    },
  };
  const request = { path: '/x', query: {}, accepts: () => 'json', ...req } as unknown as Request;
  const host = {
    switchToHttp: () => ({ getRequest: () => request, getResponse: () => res as unknown as Response }),
  } as ArgumentsHost;
  return { host, sent };
}

const orgAdmin = (organizationId: string) =>
  ({ id: 'u1', role: Role.OrgAdmin, organizationId }) as Request['user'];
const patient = { id: 'u2', role: Role.Patient, organizationId: ORG } as Request['user'];

describe('HttpErrorFilter and its two transports', () => {
  const sut = new HttpErrorFilter();
  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  it('answers JSON on API routes: the status of the code, and Retry-After when the error says', () => {
    const { host, sent } = exchange({ htmlErrors: false });
    sut.catch(
      new FhirClientError(FhirErrorKind.Unavailable, 'Epic is busy.', { status: 429, retryAfterSeconds: 90 }),
      host,
    );
    expect(sent).toEqual({
      status: 503,
      json: { statusCode: 503, code: 'EPIC_UNAVAILABLE', message: 'Epic is busy.' },
      headers: { 'retry-after': '90' },
    });
  });

  it('answers an EpicAuth error on an API route as its old API filter did', () => {
    const { host, sent } = exchange({ htmlErrors: false });
    sut.catch(new EpicAuthError(EpicAuthErrorCode.NotConfigured, 'Register the client first.'), host);
    expect(sent.status).toBe(409);
    expect(sent.json).toEqual({
      statusCode: 409,
      code: 'NOT_CONFIGURED',
      message: 'Register the client first.',
    });
  });

  it('renders a page on browser routes, titled for the EHR connection, linking back for its admin', () => {
    const { host, sent } = exchange({ htmlErrors: true, user: orgAdmin(ORG) });
    sut.catch(
      new EpicAuthError(EpicAuthErrorCode.AuthorizationDenied, 'Epic did not grant access.', {
        organizationId: ORG,
      }),
      host,
    );
    expect(sent).toMatchObject({
      status: 400,
      view: 'error',
      locals: {
        title: 'EHR connection',
        status: 400,
        messages: ['Epic did not grant access.'],
        back: `/admin/organizations/${ORG}`,
      },
    });
  });

  it('renders field errors as one line each, titled with the status', () => {
    const { host, sent } = exchange({ htmlErrors: true });
    sut.catch(
      validationFailed({
        q: ['q must be shorter than or equal to 200 characters'],
        page: ['page must be an integer'],
      }),
      host,
    );
    expect(sent.locals).toMatchObject({
      title: '400',
      messages: ['q must be shorter than or equal to 200 characters', 'page must be an integer'],
      back: undefined,
    });
  });

  it('falls back to content negotiation before the guard has spoken', () => {
    const html = exchange({ accepts: (() => 'html') as unknown as Request['accepts'] });
    sut.catch(new NotFoundException('Cannot GET /nowhere'), html.host);
    expect(html.sent).toMatchObject({
      status: 404,
      view: 'error',
      locals: { messages: ['Cannot GET /nowhere'] },
    });
    const json = exchange({});
    sut.catch(new NotFoundException('Cannot GET /nowhere'), json.host);
    expect(json.sent.json).toMatchObject({ statusCode: 404, code: 'NOT_FOUND' });
  });

  it('sends a signed-out browser to the login page', () => {
    const { host, sent } = exchange({ htmlErrors: true });
    sut.catch(new LoginRequiredException('/admin?q=a'), host);
    expect(sent.redirect).toEqual([303, '/login?next=%2Fadmin%3Fq%3Da']);
  });

  it('says when to come back on every 429, unless the throttle already did', () => {
    const { host, sent } = exchange({ htmlErrors: false });
    sut.catch(new ThrottlerException(), host);
    expect(sent.headers['retry-after']).toBe('60');
  });

  it('answers an unexpected error with a generic 500 and logs it', () => {
    const error = jest.spyOn(Logger.prototype, 'error');
    const { host, sent } = exchange({ htmlErrors: false });
    sut.catch(new TypeError('boom with a token abc'), host);
    expect(sent.json).toEqual({ statusCode: 500, code: 'INTERNAL_ERROR', message: 'Internal server error' });
    expect(error).toHaveBeenCalledWith(expect.objectContaining({ path: '/x' }), 'Unhandled error');
  });

  it("logs a domain failure with its cause, and a request's own mistakes not at all", () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const cause = new Error('upstream');
    sut.catch(
      new DomainError(ErrorCode.TokenExchangeFailed, 'Epic refused the code.', {
        cause,
        organizationId: ORG,
      }),
      exchange({ htmlErrors: false }).host,
    );
    expect(warn).toHaveBeenCalledWith(
      { failure: 'TOKEN_EXCHANGE_FAILED', orgId: ORG, err: cause },
      'Request failed: TOKEN_EXCHANGE_FAILED (Epic refused the code.)',
    );
    warn.mockClear();
    sut.catch(validationFailed({ name: ['name is empty'] }), exchange({ htmlErrors: false }).host);
    expect(warn).not.toHaveBeenCalled();
  });

  it('does nothing once the response has started', () => {
    const { host, sent } = exchange({ htmlErrors: false });
    (host.switchToHttp().getResponse<Response>() as { headersSent: boolean }).headersSent = true;
    sut.catch(new Error('late'), host);
    expect(sent).toEqual({ headers: {} });
  });
});

describe('backLink (an error page back to its organization)', () => {
  const req = (user: Request['user'], org?: string) =>
    ({ user, query: org ? { org } : {} }) as unknown as Request;

  it("links to the error's organization, else the route's ?org=, for its admins", () => {
    expect(backLink(req(orgAdmin(ORG)), ORG)).toBe(`/admin/organizations/${ORG}`);
    expect(backLink(req(orgAdmin(ORG), ORG), undefined)).toBe(`/admin/organizations/${ORG}`);
    const root = { id: 'r', role: Role.RootAdmin, organizationId: null } as Request['user'];
    expect(backLink(req(root), OTHER)).toBe(`/admin/organizations/${OTHER}`);
  });

  it('never links a patient, a signed-out visitor or another organization’s admin into the console', () => {
    expect(backLink(req(patient), ORG)).toBeUndefined();
    expect(backLink(req(undefined, ORG), ORG)).toBeUndefined();
    expect(backLink(req(orgAdmin(OTHER)), ORG)).toBeUndefined();
  });

  it('ignores an ?org= that is not an organization id (a launch names the organization by slug)', () => {
    expect(backLink(req(orgAdmin(ORG), 'st-marys'), undefined)).toBeUndefined();
    expect(backLink(req(orgAdmin(ORG), `${ORG}/../x`), undefined)).toBeUndefined();
  });
});
