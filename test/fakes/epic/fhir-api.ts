import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';

import type { FhirResource } from './fhir-data';
import type { FhirStore, StoredVersion } from './fhir-store';
import { applyJsonPatch, type PatchOperation } from './json-patch';
import { scopeAllows, type FhirInteraction } from './scopes';

export { FhirStore } from './fhir-store';

export const FHIR_JSON = 'application/fhir+json;charset=utf-8';

export interface FhirReply {
  json(status: number, body: unknown, headers?: Record<string, string>, contentType?: string): void;
  /** An answer without a body (201 with `Prefer: return=minimal`, 204, 304). */
  empty(status: number, headers?: Record<string, string>): void;
  /** A body produced piece by piece (a Bundle too large to build in memory). */
  stream(status: number, body: Readable, headers?: Record<string, string>, contentType?: string): void;
}

/** What an access token allows: its scopes and, for patient-context tokens, its patient. */
export interface FhirAccess {
  scopes: string[];
  patient?: string;
}

/** The switches of the FHIR API (types.ts, FakeEpicOptions, documents each). */
export interface FhirApiOptions {
  pageSize: number;
  locationHeader: 'absolute' | 'relative';
  pagingLinks: 'search-url' | 'getpages';
}

/** A search Bundle generated on the fly (`FakeEpic.serveLargeSearch`). */
export interface LargeSearch {
  entries: number;
  bytesPerEntry: number;
  /** Bytes generated so far, over every answer. */
  produced: number;
}

export function operationOutcome(code: string, diagnostics: string): Record<string, unknown> {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code, diagnostics }],
  };
}

/** Resource types outside the patient compartment: a patient token may read them. */
const NON_COMPARTMENT = new Set(['Practitioner', 'Organization', 'Location']);

function patientOf(resource: FhirResource): string | undefined {
  if (resource.resourceType === 'Patient') return resource.id;
  const subject = (resource.subject ?? resource.patient) as { reference?: string } | undefined;
  return subject?.reference?.startsWith('Patient/') ? subject.reference.slice('Patient/'.length) : undefined;
}

const ref = (value: string) => value.replace(/^Patient\//, '');

/** `system|code` or `code` against a CodeableConcept (or a list of them). */
function matchesToken(concepts: unknown, query: string): boolean {
  const [system, code] = query.includes('|') ? query.split('|', 2) : [undefined, query];
  const list = (Array.isArray(concepts) ? concepts : [concepts]) as Array<{
    coding?: Array<Record<string, string>>;
  }>;
  return list.some((c) =>
    c?.coding?.some((coding) => coding.code === code && (!system || coding.system === system)),
  );
}

type Filter = (resource: FhirResource, value: string) => boolean;

const names = (r: FhirResource) =>
  (r.name ?? []) as Array<{ family?: string; given?: string[]; text?: string }>;
const startsWith = (values: Array<string | undefined>, q: string) =>
  values.some((v) => v?.toLowerCase().startsWith(q.toLowerCase()));

const NAME_FILTERS: Record<string, Filter> = {
  family: (r, v) =>
    startsWith(
      names(r).map((n) => n.family),
      v,
    ),
  given: (r, v) =>
    startsWith(
      names(r).flatMap((n) => n.given ?? []),
      v,
    ),
  name: (r, v) => names(r).some((n) => startsWith([n.family, n.text, ...(n.given ?? [])], v)),
};

const FILTERS: Record<string, Record<string, Filter>> = {
  Patient: {
    ...NAME_FILTERS,
    birthdate: (r, v) => r.birthDate === v,
    gender: (r, v) => r.gender === v,
    identifier: (r, v) => {
      const [system, value] = v.includes('|') ? v.split('|', 2) : [undefined, v];
      const ids = (r.identifier ?? []) as Array<{ system?: string; value?: string }>;
      return ids.some((id) => id.value === value && (!system || id.system === system));
    },
  },
  Practitioner: NAME_FILTERS,
  Observation: {
    patient: (r, v) => patientOf(r) === ref(v),
    subject: (r, v) => patientOf(r) === ref(v),
    category: (r, v) => matchesToken(r.category, v),
    code: (r, v) => matchesToken(r.code, v),
  },
  Encounter: {
    patient: (r, v) => patientOf(r) === ref(v),
    subject: (r, v) => patientOf(r) === ref(v),
    status: (r, v) => r.status === v,
  },
};

/** Searches that Epic answers only for one patient: they need `patient` (or `subject`). */
const NEEDS_PATIENT = new Set(['Observation', 'Encounter']);

/** Search parameters that steer the answer rather than select resources. */
const CONTROL_PARAMS = new Set(['_count', '_getpagesoffset', '_format', '_getpages']);

const TYPE = /^[A-Z][A-Za-z]+$/;

/** `W/"3"` (FHIR R4 §3.1.0.4.1: the ETag is the weak versionId). */
const etagOf = (versionId: string) => `W/"${versionId}"`;
/** `W/"3"`, `"3"` or `3` → `3`. */
const versionOfEtag = (etag: string) => etag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');

function versionHeaders(version: StoredVersion): Record<string, string> {
  return {
    ETag: etagOf(version.versionId),
    'Last-Modified': new Date(version.lastUpdated).toUTCString(),
  };
}

/** One request to the FHIR API, with everything it may read or change. */
export interface FhirCall {
  method: string;
  segments: string[];
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  access: FhirAccess;
  store: FhirStore;
  fhirBase: string;
  options: FhirApiOptions;
  /** Searches paged with `_getpages` (options.pagingLinks = 'getpages'), by id. */
  searches: Map<string, { type: string; params: URLSearchParams }>;
  large: Map<string, LargeSearch>;
  reply: FhirReply;
}

/**
 * The FHIR RESTful API under the base (FHIR R4 §3.1.0 "RESTful API"), with scope checks and
 * patient-compartment limits for patient-context tokens:
 * - read (`GET [type]/[id]`, with `If-None-Match` and `If-Modified-Since` → 304, 410 once deleted),
 *   vread (`GET [type]/[id]/_history/[vid]`), history (`GET [type]/[id]/_history`, `GET [type]/_history`);
 * - search (`GET [type]?…`, `POST [type]/_search` with a form body), paged with `_count` and absolute
 *   `next`/`previous` links (`[base]/[type]?…`, or `[base]?_getpages=…` with pagingLinks 'getpages');
 * - create (`POST [type]`, `If-None-Exist`), update (`PUT [type]/[id]`, `If-Match`), patch
 *   (`PATCH [type]/[id]`, JSON Patch, `If-Match`), delete (`DELETE [type]/[id]`, `If-Match`):
 *   new versions with ETag, Last-Modified and Location (create) or Content-Location (update), and
 *   `Prefer: return=minimal | representation | OperationOutcome`.
 */
export function handleFhir(call: FhirCall): void {
  const { segments, query, reply } = call;
  // HEAD is GET without the body (RFC 9110 §9.3.2); Node's server drops the body itself.
  const method = call.method === 'HEAD' ? 'GET' : call.method;
  call.method = method;
  const fail = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
    reply.json(status, operationOutcome(code, message), headers, FHIR_JSON);
  if (segments.length === 0) {
    if (method === 'GET' && query.has('_getpages')) return getPages(call, fail);
    return fail(
      405,
      'not-supported',
      'The fake serves no whole-system interactions (batch, transaction, search)',
    );
  }
  const [type, second, third, fourth] = segments;
  if (!TYPE.test(type) || segments.length > 4) return fail(404, 'not-found', 'Unknown FHIR path');

  const route = (): [FhirInteraction, () => void] | undefined => {
    switch (segments.length) {
      case 1:
        if (method === 'GET') return ['search', () => search(call, type, query, fail)];
        if (method === 'POST') return ['create', () => create(call, type, fail)];
        return undefined;
      case 2:
        if (second === '_search' && method === 'POST') {
          return ['search', () => search(call, type, formParams(call), fail)];
        }
        if (second === '_history' && method === 'GET') return ['search', () => history(call, type)];
        if (second.startsWith('_')) return undefined;
        if (method === 'GET') return ['read', () => read(call, type, second, fail)];
        if (method === 'PUT' || method === 'PATCH') return ['update', () => update(call, type, second, fail)];
        if (method === 'DELETE') return ['delete', () => remove(call, type, second, fail)];
        return undefined;
      case 3:
        return third === '_history' && method === 'GET'
          ? ['read', () => history(call, type, second)]
          : undefined;
      default:
        return third === '_history' && method === 'GET'
          ? ['read', () => vread(call, type, second, fourth, fail)]
          : undefined;
    }
  };
  const found = route();
  if (!found) {
    return fail(405, 'not-supported', `${method} ${segments.join('/')} is not supported by the fake`);
  }
  const [interaction, run] = found;
  const { allowed, patientOnly } = scopeAllows(call.access.scopes, type, interaction);
  if (!allowed) {
    // Epic's troubleshooting, RFC 6750 §3.1: a scope problem is a 403 with error="insufficient_scope".
    return fail(403, 'forbidden', `The access token has no scope to ${interaction} ${type}`, {
      'WWW-Authenticate': `Bearer error="insufficient_scope", error_description="${type}.${interaction}"`,
    });
  }
  const compartment = patientOnly && !NON_COMPARTMENT.has(type);
  if (compartment && !call.access.patient) return notAuthorized(fail);
  call.access = { ...call.access, patient: compartment ? call.access.patient : undefined };
  run();
}

type Fail = (status: number, code: string, message: string, headers?: Record<string, string>) => void;

const notAuthorized = (fail: Fail) =>
  fail(403, 'forbidden', 'The authenticated user is not authorized to view the requested data.');

/** The compartment check: `call.access.patient` is set only for a patient-compartment token. */
const outsideCompartment = (call: FhirCall, resource: FhirResource) =>
  call.access.patient !== undefined && patientOf(resource) !== call.access.patient;

function read(call: FhirCall, type: string, id: string, fail: Fail): void {
  const current = call.store.current(type, id);
  if (!current) return fail(404, 'not-found', `${type}/${id} was not found`);
  if (!current.resource) return fail(410, 'deleted', `${type}/${id} was deleted`, versionHeaders(current));
  if (outsideCompartment(call, current.resource)) return notAuthorized(fail);
  const headers = versionHeaders(current);
  // Conditional read (FHIR R4 §3.1.0.2.1): 304 when the client's copy is current.
  const noneMatch = header(call, 'if-none-match');
  const since = Date.parse(header(call, 'if-modified-since') ?? '');
  if (
    (noneMatch !== undefined &&
      (noneMatch.trim() === '*' ||
        noneMatch.split(',').some((e) => versionOfEtag(e) === current.versionId))) ||
    (noneMatch === undefined && !Number.isNaN(since) && Date.parse(current.lastUpdated) <= since)
  ) {
    return call.reply.empty(304, headers);
  }
  call.reply.json(200, current.resource, headers, FHIR_JSON);
}

function vread(call: FhirCall, type: string, id: string, versionId: string, fail: Fail): void {
  const version = call.store.version(type, id, versionId);
  if (!version) return fail(404, 'not-found', `${type}/${id} has no version ${versionId}`);
  if (!version.resource) return fail(410, 'deleted', `${type}/${id} version ${versionId} is a deletion`);
  if (outsideCompartment(call, version.resource)) return notAuthorized(fail);
  call.reply.json(200, version.resource, versionHeaders(version), FHIR_JSON);
}

function history(call: FhirCall, type: string, id?: string): void {
  const { fhirBase } = call;
  const versions = call.store
    .history(type, id)
    .filter(({ version }) => !version.resource || !outsideCompartment(call, version.resource));
  call.reply.json(
    200,
    {
      resourceType: 'Bundle',
      type: 'history',
      total: versions.length,
      link: [{ relation: 'self', url: `${fhirBase}/${type}${id ? `/${id}` : ''}/_history` }],
      entry: versions.map(({ type: t, id: i, version }) => ({
        fullUrl: `${fhirBase}/${t}/${i}`,
        ...(version.resource ? { resource: version.resource } : {}),
        request: { method: version.method === 'PATCH' ? 'PUT' : version.method, url: `${t}/${i}` },
        response: {
          status: version.method === 'POST' ? '201' : version.method === 'DELETE' ? '204' : '200',
          etag: etagOf(version.versionId),
          lastModified: version.lastUpdated,
        },
      })),
    },
    {},
    FHIR_JSON,
  );
}

/** The resources of `type` that match `params` (and the token's compartment). */
function matching(call: FhirCall, type: string, params: URLSearchParams): FhirResource[] {
  const filters = FILTERS[type] ?? {};
  return call.store.all(type).filter((resource) => {
    if (outsideCompartment(call, resource)) return false;
    for (const [name, value] of params) {
      if (name === '_id' && !value.split(',').includes(resource.id)) return false;
      const filter = filters[name];
      if (filter && !filter(resource, value)) return false;
    }
    return true;
  });
}

function search(call: FhirCall, type: string, query: URLSearchParams, fail: Fail): void {
  const params = new URLSearchParams(query);
  const patient = call.access.patient;
  if (patient !== undefined && NEEDS_PATIENT.has(type)) {
    const asked = params.get('patient') ?? params.get('subject');
    if (asked !== null && ref(asked) !== patient) return notAuthorized(fail);
    if (asked === null) params.set('patient', patient);
  }
  const large = call.large.get(type);
  if (large) return call.reply.stream(200, largeBundle(call.fhirBase, type, large), {}, FHIR_JSON);
  if (NEEDS_PATIENT.has(type) && !params.has('patient') && !params.has('subject')) {
    return fail(400, 'required', `Searching ${type} needs the patient or subject parameter`);
  }
  searchsetPage(call, type, params, Number(params.get('_getpagesoffset') ?? 0) || 0, query);
}

/** One page of a search, with its self, next and previous links. */
function searchsetPage(
  call: FhirCall,
  type: string,
  params: URLSearchParams,
  offsetAsked: number,
  asked: URLSearchParams,
  searchId?: string,
): void {
  const { fhirBase, options } = call;
  const criteria = new URLSearchParams([...params].filter(([name]) => !CONTROL_PARAMS.has(name)));
  const matches = matching(call, type, criteria);
  const count = Math.min(
    Math.max(Number(params.get('_count') ?? options.pageSize) || options.pageSize, 1),
    100,
  );
  const offset = Math.max(offsetAsked, 0);
  const page = matches.slice(offset, offset + count);
  let pageUrl: (at: number) => string;
  if (options.pagingLinks === 'getpages') {
    // A server-side search kept by id, paged at the base (HAPI FHIR's layout).
    const id = searchId ?? randomUUID();
    call.searches.set(id, { type, params: criteria });
    pageUrl = (at) =>
      `${fhirBase}?_getpages=${id}&_getpagesoffset=${at}&_count=${count}&_bundletype=searchset`;
  } else {
    pageUrl = (at) => {
      const p = new URLSearchParams(criteria);
      p.set('_count', String(count));
      p.set('_getpagesoffset', String(at));
      return `${fhirBase}/${type}?${p.toString()}`;
    };
  }
  const self = searchId ? pageUrl(offset) : `${fhirBase}/${type}${asked.size ? `?${asked.toString()}` : ''}`;
  const link = [{ relation: 'self', url: self }];
  if (offset + count < matches.length) link.push({ relation: 'next', url: pageUrl(offset + count) });
  if (offset > 0) link.push({ relation: 'previous', url: pageUrl(Math.max(offset - count, 0)) });
  call.reply.json(
    200,
    {
      resourceType: 'Bundle',
      type: 'searchset',
      total: matches.length,
      link,
      entry: page.map((resource) => ({
        fullUrl: `${fhirBase}/${type}/${resource.id}`,
        resource,
        search: { mode: 'match' },
      })),
    },
    {},
    FHIR_JSON,
  );
}

function getPages(call: FhirCall, fail: Fail): void {
  const id = call.query.get('_getpages') ?? '';
  const saved = call.searches.get(id);
  if (!saved) return fail(410, 'not-found', `Search ${id} has expired or never existed`);
  const { allowed } = scopeAllows(call.access.scopes, saved.type, 'search');
  if (!allowed) return fail(403, 'forbidden', `The access token has no scope to search ${saved.type}`);
  const params = new URLSearchParams(saved.params);
  const count = call.query.get('_count');
  if (count) params.set('_count', count);
  const offset = Number(call.query.get('_getpagesoffset') ?? 0) || 0;
  searchsetPage(call, saved.type, params, offset, call.query, id);
}

/** A form-encoded `_search` body and the query together (FHIR R4 §3.1.0.8.1: both may carry parameters). */
function formParams(call: FhirCall): URLSearchParams {
  const params = new URLSearchParams(call.query);
  if (isMedia(call, 'application/x-www-form-urlencoded')) {
    for (const [name, value] of new URLSearchParams(call.body)) params.append(name, value);
  }
  return params;
}

function header(call: FhirCall, name: string): string | undefined {
  const value = call.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function isMedia(call: FhirCall, ...types: string[]): boolean {
  const type = (header(call, 'content-type') ?? '').split(';')[0].trim().toLowerCase();
  return types.includes(type);
}

type Parsed = { ok: true; resource: FhirResource } | { ok: false; status: number; message: string };

/** The request's resource, or why it is not one: 415 for another media type, 400 for a bad body. */
function resourceBody(call: FhirCall, type: string): Parsed {
  if (!isMedia(call, 'application/fhir+json', 'application/json')) {
    return { ok: false, status: 415, message: 'Send the resource as application/fhir+json' };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(call.body);
  } catch {
    return { ok: false, status: 400, message: 'The body is not JSON' };
  }
  const resource = parsed as Partial<FhirResource> | null;
  if (resource?.resourceType !== type) {
    return { ok: false, status: 400, message: `The body is not a ${type} resource` };
  }
  return { ok: true, resource: resource as FhirResource };
}

/** A write's answer, as `Prefer` asks (FHIR R4 §3.1.0.1.7: minimal, representation, OperationOutcome). */
function written(
  call: FhirCall,
  status: number,
  version: StoredVersion,
  headers: Record<string, string>,
): void {
  const prefer = (header(call, 'prefer') ?? '').toLowerCase();
  const all = { ...versionHeaders(version), ...headers };
  if (prefer.includes('return=minimal')) return call.reply.empty(status, all);
  if (prefer.includes('return=operationoutcome')) {
    const outcome = {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'information', code: 'informational', diagnostics: 'Done' }],
    };
    return call.reply.json(status, outcome, all, FHIR_JSON);
  }
  call.reply.json(status, version.resource, all, FHIR_JSON);
}

/** `[base]/[type]/[id]/_history/[vid]`, absolute unless the `locationHeader` switch says relative. */
function versionUrl(call: FhirCall, type: string, id: string, versionId: string): string {
  const path = `${type}/${id}/_history/${versionId}`;
  return call.options.locationHeader === 'relative' ? path : `${call.fhirBase}/${path}`;
}

/** If-Match (FHIR R4 §3.1.0.4.1, version-aware updates): 412 unless the current version is named. */
function preconditionFailed(call: FhirCall, current: StoredVersion | undefined): boolean {
  const ifMatch = header(call, 'if-match');
  if (ifMatch === undefined) return false;
  return !current?.resource || versionOfEtag(ifMatch) !== current.versionId;
}

function create(call: FhirCall, type: string, fail: Fail): void {
  const parsed = resourceBody(call, type);
  if (!parsed.ok) return fail(parsed.status, 'invalid', parsed.message);
  const { resource } = parsed;
  if (outsideCompartment(call, resource)) return notAuthorized(fail);
  // Conditional create (FHIR R4 §3.1.0.8.1): one match is returned as is, several are an error.
  const ifNoneExist = header(call, 'if-none-exist');
  if (ifNoneExist !== undefined) {
    const found = matching(call, type, new URLSearchParams(ifNoneExist.replace(/^[A-Za-z]+\?/, '')));
    if (found.length > 1) {
      return fail(412, 'duplicate', `${found.length} ${type} resources match If-None-Exist`);
    }
    if (found.length === 1) {
      const existing = call.store.current(type, found[0].id)!;
      return call.reply.json(200, existing.resource, versionHeaders(existing), FHIR_JSON);
    }
  }
  const version = call.store.create(resource);
  written(call, 201, version, { Location: versionUrl(call, type, version.resource!.id, version.versionId) });
}

function update(call: FhirCall, type: string, id: string, fail: Fail): void {
  const current = call.store.current(type, id);
  if (preconditionFailed(call, current)) {
    return fail(412, 'conflict', `${type}/${id} is not at the version If-Match names`);
  }
  let next: FhirResource;
  if (call.method === 'PATCH') {
    if (!current?.resource) return fail(404, 'not-found', `${type}/${id} was not found`);
    if (!isMedia(call, 'application/json-patch+json')) {
      return fail(415, 'not-supported', 'The fake applies JSON Patch (application/json-patch+json) only');
    }
    try {
      next = applyJsonPatch(current.resource, JSON.parse(call.body) as PatchOperation[]);
    } catch (error) {
      return fail(422, 'processing', `The patch cannot be applied: ${(error as Error).message}`);
    }
  } else {
    const parsed = resourceBody(call, type);
    if (!parsed.ok) return fail(parsed.status, 'invalid', parsed.message);
    const { resource } = parsed;
    // FHIR R4 §3.1.0.4: the body's id must be the URL's.
    if (resource.id !== id) return fail(400, 'invalid', `The resource's id must be ${id}`);
    next = resource;
  }
  if (outsideCompartment(call, next) || (current?.resource && outsideCompartment(call, current.resource))) {
    return notAuthorized(fail);
  }
  const created = !current?.resource;
  const version = call.store.update(type, id, next, call.method === 'PATCH' ? 'PATCH' : 'PUT');
  const url = versionUrl(call, type, id, version.versionId);
  // Created: Location (FHIR R4 §3.1.0.4); updated: Content-Location, as HAPI FHIR answers.
  written(call, created ? 201 : 200, version, created ? { Location: url } : { 'Content-Location': url });
}

function remove(call: FhirCall, type: string, id: string, fail: Fail): void {
  const current = call.store.current(type, id);
  if (preconditionFailed(call, current)) {
    return fail(412, 'conflict', `${type}/${id} is not at the version If-Match names`);
  }
  if (current?.resource && outsideCompartment(call, current.resource)) return notAuthorized(fail);
  call.store.delete(type, id);
  // FHIR R4 §3.1.0.7: 204 (or 200 with an OperationOutcome), also when it was not there.
  call.reply.empty(204);
}

/**
 * A searchset Bundle of `entries` generated Observations of about `bytesPerEntry` bytes each,
 * written piece by piece as the reader takes them: its size does not depend on the fake's memory.
 */
function largeBundle(fhirBase: string, type: string, large: LargeSearch): Readable {
  const padding = 'x'.repeat(Math.max(0, large.bytesPerEntry - 200));
  function* pieces(): Generator<string> {
    yield `{"resourceType":"Bundle","type":"searchset","total":${large.entries},"link":[{"relation":"self","url":"${fhirBase}/${type}"}],"entry":[`;
    for (let i = 0; i < large.entries; i++) {
      const id = `large-${i}`;
      const piece = `${i === 0 ? '' : ','}{"fullUrl":"${fhirBase}/${type}/${id}","resource":{"resourceType":"${type}","id":"${id}","status":"final","code":{"text":"${padding}"}},"search":{"mode":"match"}}`;
      large.produced += piece.length;
      yield piece;
    }
    yield ']}';
  }
  return Readable.from(pieces(), { objectMode: false });
}
