import { Readable } from 'node:stream';

import type { IncomingMessage } from 'node:http';

import {
  checkInputText,
  gatewaySlug,
  gatewayTarget,
  isGatewayUrl,
  readRequestBody,
  searchParams,
} from './gateway-request';
import { GatewayError } from './gateway.errors';

describe('gatewayTarget', () => {
  it('reads the FHIR path and the raw query from the URL as received', () => {
    const target = gatewayTarget('/gateway/st-marys/fhir/Patient/123?_elements=name&name=a%20b&name=c');
    expect(target).toMatchObject({
      path: 'Patient/123',
      segments: ['Patient', '123'],
      query: '_elements=name&name=a%20b&name=c',
    });
    expect([...target.params]).toEqual([
      ['_elements', 'name'],
      ['name', 'a b'],
      ['name', 'c'],
    ]);
    expect(gatewayTarget('/gateway/st-marys/fhir')).toMatchObject({ path: '', segments: [], query: '' });
    expect(gatewayTarget('/gateway/st-marys/fhir/?_getpages=x')).toMatchObject({
      path: '',
      segments: [],
      query: '_getpages=x',
    });
    expect(gatewayTarget('/gateway/st-marys/fhir/Observation/')).toMatchObject({ path: 'Observation' });
    expect(gatewayTarget('/gateway/st-marys/fhir/Patient/1/$everything')).toMatchObject({
      segments: ['Patient', '1', '$everything'],
    });
  });

  it.each([
    '/gateway/st-marys/fhir/Patient/..',
    '/gateway/st-marys/fhir/Patient/%2E%2E/x',
    '/gateway/st-marys/fhir/Patient/a%2Fb',
    '/gateway/st-marys/fhir//Patient',
    '/gateway/st-marys/fhir/Patient/a b',
    '/gateway/st-marys/fhirish/Patient',
  ])('refuses %s: it could leave the FHIR base', (url) => {
    expect(() => gatewayTarget(url)).toThrow(GatewayError);
  });

  it('is no SMART server: .well-known is not found', () => {
    expect(() => gatewayTarget('/gateway/x/fhir/.well-known/smart-configuration')).toThrow(
      expect.objectContaining({ code: 'NOT_FOUND' }) as Error,
    );
  });
});

describe('gatewaySlug', () => {
  it('reads the organization of a gateway URL, decoded', () => {
    expect(gatewaySlug('/gateway/st-marys/fhir/Patient/1')).toBe('st-marys');
    expect(gatewaySlug('/gateway/st%20marys/fhir?x=1')).toBe('st marys');
    expect(gatewaySlug('/gateway/st-marys/fhir')).toBe('st-marys');
  });

  it('refuses a slug that is not validly percent-encoded (400)', () => {
    expect(() => gatewaySlug('/gateway/st%ZZ/fhir/Patient')).toThrow(
      expect.objectContaining({
        code: 'BAD_REQUEST',
        message: expect.stringContaining('percent-encoded'),
      }) as Error,
    );
  });

  it('tells gateway URLs from the others', () => {
    for (const url of [
      '/gateway/a/fhir',
      '/gateway/a/fhir/',
      '/gateway/a/fhir?x',
      '/gateway/a/fhir/Patient/1',
    ]) {
      expect(isGatewayUrl(url)).toBe(true);
    }
    for (const url of [
      '/gateway/a/fhirish',
      '/gateway/a',
      '/gateway//fhir',
      '/Gateway/a/fhir',
      '/api/gateway/a/fhir',
    ]) {
      expect(isGatewayUrl(url)).toBe(false);
    }
  });
});

describe('checkInputText', () => {
  it.each([
    [
      '/gateway/st-marys/fhir/Patient?name=a%0Ab',
      'The query parameter "name" must not contain control characters',
    ],
    [
      '/gateway/st-marys/fhir/Patient?na%00me=x',
      'A query parameter name must not contain control characters',
    ],
    ['/gateway/st%0Amarys/fhir/Patient', 'The organization in the URL must not contain control characters'],
    ['/gateway/st-marys/fhir?x=%C2%85', 'The query parameter "x" must not contain control characters'],
  ])('refuses %s (400)', (url, message) => {
    expect(() => checkInputText(url)).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST', message: expect.stringContaining(message) }) as Error,
    );
  });

  it('lets ordinary text through, encoded or not', () => {
    for (const url of [
      '/gateway/st-marys/fhir/Patient?name=Zo%C3%AB%20Smith&birthdate=ge2020-01-01',
      '/gateway/st%20marys/fhir',
      '/gateway/st-marys/fhir/Patient/1',
    ]) {
      expect(() => checkInputText(url)).not.toThrow();
    }
  });
});

describe('readRequestBody', () => {
  const request = (body: string, headers: Record<string, string>) =>
    Object.assign(Readable.from([Buffer.from(body)]), { headers }) as unknown as IncomingMessage;

  it('reads a body whole, and none when there is none', async () => {
    expect((await readRequestBody(request('{"a":1}', { 'content-length': '7' }), 100))?.toString()).toBe(
      '{"a":1}',
    );
    expect(await readRequestBody(request('', {}), 100)).toBeUndefined();
  });

  it('answers 413 past the limit, from Content-Length or while reading a chunked body', async () => {
    await expect(
      readRequestBody(request('x'.repeat(10), { 'content-length': '101' }), 100),
    ).rejects.toMatchObject({
      status: 413,
    });
    await expect(
      readRequestBody(request('x'.repeat(101), { 'transfer-encoding': 'chunked' }), 100),
    ).rejects.toMatchObject({ status: 413 });
  });

  it('refuses a compressed body with 415', async () => {
    await expect(
      readRequestBody(request('x', { 'content-length': '1', 'content-encoding': 'gzip' }), 100),
    ).rejects.toMatchObject({ status: 415 });
  });
});

describe('searchParams', () => {
  it('adds a form body to the query, not any other body', () => {
    const form = searchParams(
      '_count=5',
      'application/x-www-form-urlencoded; charset=utf-8',
      Buffer.from('patient=1'),
    );
    expect([...form]).toEqual([
      ['_count', '5'],
      ['patient', '1'],
    ]);
    expect([...searchParams('', 'application/fhir+json', Buffer.from('{"a":1}'))]).toEqual([]);
  });
});
