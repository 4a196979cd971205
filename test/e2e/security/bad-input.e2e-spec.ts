import { readFileSync, statSync } from 'node:fs';

import { Response } from 'supertest';
import TestAgent from 'supertest/lib/agent';

import { Role } from 'src/users/user.types';

import { csrfFrom, signIn, TestFactory } from 'test/factories';
import { createTestApp, TestApp } from 'test/setup/test-app';

/**
 * Text that PostgreSQL or an HTTP header cannot carry (NUL and the other control
 * characters), and paging numbers beyond what a query can use, are refused as 400 naming the field,
 * on every form and JSON route; none of them reaches a 500, an ERROR log line or a stack trace.
 */

/** Text no single-line field may contain. */
const BAD_TEXT: [string, string][] = [
  ['a NUL byte', 'a\u0000b'],
  ['CR/LF (header injection)', 'a\r\nX-Injected: yes'],
  ['an escape sequence', 'a\u001b[31mb'],
  ['DEL', 'a\u007fb'],
  ['a C1 control (NEL)', 'a\u0085b'],
];

/** Characters that are not control characters but cannot go into an HTTP header either. */
const NOT_FOR_HEADERS: [string, string][] = [
  ['a line separator (U+2028)', 'client\u2028id'],
  ['a zero-width space', 'client\u200bid'],
  ['a space', 'client id'],
];

/** Paging values past what a query can take. */
const BAD_NUMBERS = ['1e20', '9007199254740993', '-1', '1.5', 'abc', '1e400'];

interface Ctx {
  t: TestApp;
  root: { agent: TestAgent; csrf: string };
  anon: { agent: TestAgent; csrf: string };
  patient: { agent: TestAgent; csrf: string };
  orgId: string;
}

type Kind = 'form' | 'json' | 'page query';
interface Target {
  route: string;
  kind: Kind;
  fields: string[];
  send: (c: Ctx, field: string, value: string) => Promise<Response>;
}

const form =
  (path: (c: Ctx) => string, base: Record<string, string>, who: 'root' | 'anon' | 'patient' = 'root') =>
  (c: Ctx, field: string, value: string) => {
    const actor = c[who];
    return actor.agent
      .post(path(c))
      .type('form')
      .send({ ...base, _csrf: actor.csrf, [field]: value });
  };

const json =
  (method: 'post' | 'put' | 'patch', path: (c: Ctx) => string, base: Record<string, string>) =>
  (c: Ctx, field: string, value: string) =>
    c.root.agent[method](path(c))
      .set('x-csrf-token', c.root.csrf)
      .send({ ...base, [field]: value });

const get =
  (path: (c: Ctx) => string, base: Record<string, string> = {}, who: 'root' | 'anon' = 'root') =>
  (c: Ctx, field: string, value: string) =>
    c[who].agent.get(path(c)).query({ ...base, [field]: value });

const TARGETS: Target[] = [
  // Forms (CSRF token in `_csrf`).
  {
    route: 'POST /login',
    kind: 'form',
    fields: ['email', 'password', 'next'],
    send: form(() => '/login', { email: 'a@example.test', password: 'not-the-password' }, 'anon'),
  },
  {
    route: 'POST /account/password',
    kind: 'form',
    fields: ['currentPassword', 'newPassword', 'confirmPassword'],
    send: form(() => '/account/password', {
      currentPassword: 'x',
      newPassword: 'long-enough-password',
      confirmPassword: 'long-enough-password',
    }),
  },
  {
    route: 'POST /admin/organizations',
    kind: 'form',
    fields: ['name', 'slug'],
    send: form(() => '/admin/organizations', { name: 'Bad input hospital' }),
  },
  {
    route: 'POST /admin/organizations/:id/rename',
    kind: 'form',
    fields: ['name'],
    send: form((c) => `/admin/organizations/${c.orgId}/rename`, {}),
  },
  {
    route: 'POST /admin/organizations/:id/admins',
    kind: 'form',
    fields: ['email', 'password'],
    send: form((c) => `/admin/organizations/${c.orgId}/admins`, { email: 'new-admin@example.test' }),
  },
  {
    route: 'POST /admin/epic/registration',
    kind: 'form',
    fields: ['clientId', 'clientSecret', 'fhirBaseUrl', 'scopes'],
    send: form((c) => `/admin/epic/registration?org=${c.orgId}`, {
      clientId: 'client-1',
      environment: 'sandbox',
    }),
  },
  {
    // Posted by an EHR from its own site: no CSRF token, public.
    route: 'POST /fhir/epic-launch',
    kind: 'form',
    fields: ['iss', 'launch'],
    send: (c, field, value) =>
      c.t
        .http()
        .post('/fhir/epic-launch')
        .type('form')
        .send({ iss: 'https://fhir.example.test/api/FHIR/R4', launch: 'abc', [field]: value }),
  },
  {
    route: 'POST /account/notifications',
    kind: 'form',
    fields: ['admin-connections'],
    send: form(() => '/account/notifications', {}),
  },
  {
    route: 'POST /launch/patient/notifications',
    kind: 'form',
    fields: ['contactEmail', 'ownConnection'],
    send: form(() => '/launch/patient/notifications', { contactEmail: 'pat@example.org' }, 'patient'),
  },
  {
    // One-click unsubscribe (RFC 8058): public, without a CSRF token by design.
    route: 'POST /mail/unsubscribe',
    kind: 'form',
    fields: ['t'],
    send: form(() => '/mail/unsubscribe', {}, 'anon'),
  },
  // Pages and their query strings.
  {
    route: 'GET /mail/unsubscribe',
    kind: 'page query',
    fields: ['t'],
    send: get(() => '/mail/unsubscribe', {}, 'anon'),
  },
  { route: 'GET /admin (console search)', kind: 'page query', fields: ['q'], send: get(() => '/admin') },
  { route: 'GET /login', kind: 'page query', fields: ['next'], send: get(() => '/login', {}, 'anon') },
  {
    route: 'GET /admin/epic/registration',
    kind: 'page query',
    fields: ['org'],
    send: get(() => '/admin/epic/registration'),
  },
  {
    route: 'GET /fhir/epic-launch',
    kind: 'page query',
    fields: ['iss', 'launch'],
    send: get(
      () => '/fhir/epic-launch',
      { iss: 'https://fhir.example.test/api/FHIR/R4', launch: 'x' },
      'anon',
    ),
  },
  {
    route: 'GET /fhir/epic-connect',
    kind: 'page query',
    fields: ['org'],
    send: get(() => '/fhir/epic-connect', {}, 'anon'),
  },
  {
    route: 'GET /fhir/epic-callback',
    kind: 'page query',
    fields: ['state', 'code'],
    send: get(() => '/fhir/epic-callback', { state: 'some-state', code: 'some-code' }, 'anon'),
  },
  // JSON API (CSRF token in `x-csrf-token`).
  {
    route: 'GET /api/organizations',
    kind: 'json',
    fields: ['search'],
    send: get(() => '/api/organizations'),
  },
  {
    route: 'POST /api/organizations',
    kind: 'json',
    fields: ['name', 'slug'],
    send: json('post', () => '/api/organizations', { name: 'Bad input clinic' }),
  },
  {
    route: 'PATCH /api/organizations/:id',
    kind: 'json',
    fields: ['name', 'slug'],
    send: json('patch', (c) => `/api/organizations/${c.orgId}`, {}),
  },
  {
    route: 'PUT /api/organizations/:id/epic-client',
    kind: 'json',
    fields: ['clientId', 'clientSecret', 'fhirBaseUrl', 'scopes'],
    send: json('put', (c) => `/api/organizations/${c.orgId}/epic-client`, {
      clientId: 'client-1',
      environment: 'sandbox',
    }),
  },
  {
    route: 'POST /api/organizations/:id/admins',
    kind: 'json',
    fields: ['email', 'password'],
    send: json('post', (c) => `/api/organizations/${c.orgId}/admins`, { email: 'json-admin@example.test' }),
  },
  { route: 'GET /fhir/epic-status', kind: 'json', fields: ['org'], send: get(() => '/fhir/epic-status') },
  {
    route: 'GET /api/notifications/outbox',
    kind: 'json',
    fields: ['status'],
    send: get(() => '/api/notifications/outbox'),
  },
  {
    route: 'POST /fhir/epic-disconnect',
    kind: 'json',
    fields: ['org'],
    send: json('post', () => '/fhir/epic-disconnect', {}),
  },
  {
    route: 'POST /fhir/test-epic-connection',
    kind: 'json',
    fields: ['org'],
    send: json('post', () => '/fhir/test-epic-connection', {}),
  },
];

/** Paging and limits: every numeric query parameter. */
const NUMBER_TARGETS: Target[] = [
  {
    route: 'GET /api/organizations',
    kind: 'json',
    fields: ['offset', 'limit'],
    send: get(() => '/api/organizations'),
  },
  { route: 'GET /admin', kind: 'page query', fields: ['page'], send: get(() => '/admin') },
  { route: 'GET /api/audit-events', kind: 'json', fields: ['limit'], send: get(() => '/api/audit-events') },
  {
    route: 'GET /api/organizations/:id/audit-events',
    kind: 'json',
    fields: ['limit'],
    send: get((c) => `/api/organizations/${c.orgId}/audit-events`),
  },
  { route: 'GET /api/notifications', kind: 'json', fields: ['limit'], send: get(() => '/api/notifications') },
  {
    route: 'GET /api/notifications/outbox',
    kind: 'json',
    fields: ['limit'],
    send: get(() => '/api/notifications/outbox'),
  },
];

/** Fields that end up in HTTP headers (the client ID in Basic authentication and assertions). */
const HEADER_TARGETS: Target[] = [
  TARGETS.find((x) => x.route === 'PUT /api/organizations/:id/epic-client')!,
  TARGETS.find((x) => x.route === 'POST /admin/epic/registration')!,
].map((x) => ({ ...x, fields: ['clientId'] }));

const cases = (targets: Target[], values: [string, string][]) =>
  targets.flatMap((target) =>
    target.fields.flatMap((field) =>
      values.map(([label, value]) => [target.route, field, label, value, target] as const),
    ),
  );

/**
 * The message(s) of a 400: JSON `message`, the error page's alerts, or the messages a re-rendered
 * form shows beside its fields (never the whole page, whose form names every field anyway).
 */
function messagesOf(res: Response): string {
  if (res.type === 'application/json') {
    const message = (res.body as { message?: unknown }).message;
    return Array.isArray(message) ? message.join(' | ') : String(message);
  }
  const alerts = [...res.text.matchAll(/<p class="alert bad">([^<]*)<\/p>/g)].map((m) => m[1]);
  const fieldErrors = [...res.text.matchAll(/<p class="field-error" id="([\w]+)-error">([^<]*)<\/p>/g)].map(
    (m) => `${m[1]}: ${m[2]}`,
  );
  return [...alerts, ...fieldErrors].join(' | ');
}

describe('bad input on every form and JSON route: 400 naming the field, never a 500', () => {
  const ctx = {} as Ctx;
  const logFile = process.env.LOG_FILE!;
  let logOffset = 0;

  beforeAll(async () => {
    ctx.t = await createTestApp();
    const factory = new TestFactory(ctx.t);
    ctx.orgId = (await factory.organization()).id;
    ctx.root = await signIn(ctx.t, await factory.user(Role.RootAdmin, null));
    ctx.patient = await signIn(ctx.t, await factory.user(Role.Patient, ctx.orgId));
    const agent = ctx.t.agent();
    const page = await agent.get('/login').expect(200);
    ctx.anon = { agent, csrf: csrfFrom(page.text) };
    logOffset = statSync(logFile).size;
  });
  afterAll(() => ctx.t.close());

  /** Log lines written since the last call: none may be an ERROR or carry a stack. */
  function newLogLines(): { level: number; msg?: string; err?: { stack?: string } }[] {
    // Bytes, not characters (log lines carry "’" and "…"), and only whole lines: the logger may be
    // half-way through writing the last one.
    const bytes = readFileSync(logFile).subarray(logOffset);
    const end = bytes.lastIndexOf(0x0a) + 1;
    logOffset += end;
    return bytes
      .subarray(0, end)
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { level: number; msg?: string; err?: { stack?: string } });
  }

  function expectRefused(res: Response, field: string): void {
    expect({ status: res.status, body: res.status === 400 ? 'ok' : res.text.slice(0, 300) }).toEqual({
      status: 400,
      body: 'ok',
    });
    expect(messagesOf(res)).toContain(field);
    const serious = newLogLines().filter((l) => l.level >= 50 || l.err?.stack !== undefined);
    expect(serious).toEqual([]);
  }

  it.each(cases(TARGETS, BAD_TEXT))('%s: %s with %s → 400', async (_route, field, _label, value, target) => {
    expectRefused(await target.send(ctx, field, value), field);
  });

  it.each(
    cases(
      NUMBER_TARGETS,
      BAD_NUMBERS.map((n) => [n, n]),
    ),
  )('%s: %s=%s → 400', async (_route, field, _label, value, target) => {
    expectRefused(await target.send(ctx, field, value), field);
  });

  it.each(cases(HEADER_TARGETS, NOT_FOR_HEADERS))(
    '%s: %s with %s → 400',
    async (_route, field, _label, value, target) => {
      expectRefused(await target.send(ctx, field, value), field);
    },
  );

  it('refuses a control character in a field name too, and in a nested JSON value', async () => {
    const key = await ctx.root.agent
      .post('/api/organizations')
      .set('x-csrf-token', ctx.root.csrf)
      .send({ name: 'Fine name', ['sl\u0000ug']: 'x' });
    expect(key.status).toBe(400);
    const nested = await ctx.root.agent
      .post('/api/organizations')
      .set('x-csrf-token', ctx.root.csrf)
      .send({ name: ['a\u0000b'] });
    expectRefused(nested, 'name');
  });

  it('still accepts ordinary text, accents and paging within bounds', async () => {
    const created = await ctx.root.agent
      .post('/api/organizations')
      .set('x-csrf-token', ctx.root.csrf)
      .send({ name: 'Hôpital Saint-Éloi — Zürich' })
      .expect(201);
    expect(created.body.name).toBe('Hôpital Saint-Éloi — Zürich');
    await ctx.root.agent.get('/api/organizations').query({ offset: '1000000', limit: '500' }).expect(200);
    await ctx.root.agent.get('/admin').query({ q: 'Saint-Éloi', page: '2' }).expect(200);
    expect(newLogLines().filter((l) => l.level >= 50)).toEqual([]);
  });
});
