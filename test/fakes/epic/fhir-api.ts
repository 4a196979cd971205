import type { FhirResource } from './fhir-data';
import { scopeAllows } from './scopes';

export const FHIR_JSON = 'application/fhir+json;charset=utf-8';

export interface FhirReply {
  json(status: number, body: unknown, headers?: Record<string, string>, contentType?: string): void;
}

/** What an access token allows: its scopes and, for patient-context tokens, its patient. */
export interface FhirAccess {
  scopes: string[];
  patient?: string;
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

export class FhirStore {
  private readonly resources = new Map<string, FhirResource>();

  constructor(seed: FhirResource[]) {
    for (const resource of seed) this.put(resource);
  }

  put(resource: FhirResource): void {
    this.resources.set(`${resource.resourceType}/${resource.id}`, structuredClone(resource));
  }

  get(type: string, id: string): FhirResource | undefined {
    const found = this.resources.get(`${type}/${id}`);
    return found && structuredClone(found);
  }

  all(type: string): FhirResource[] {
    return [...this.resources.values()].filter((r) => r.resourceType === type);
  }
}

/**
 * The FHIR REST API under the base: read (`{type}/{id}`) and search (`{type}?…`) with scope checks and
 * patient-compartment limits for patient-context tokens. Search Bundles page with `_count` and
 * absolute `next`/`previous` links.
 */
export function handleFhir(args: {
  method: string;
  segments: string[];
  query: URLSearchParams;
  access: FhirAccess;
  store: FhirStore;
  fhirBase: string;
  pageSize: number;
  reply: FhirReply;
}): void {
  const { method, segments, query, access, store, fhirBase, reply } = args;
  const fail = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
    reply.json(status, operationOutcome(code, message), headers, FHIR_JSON);
  if (method !== 'GET') return fail(405, 'not-supported', `${method} is not supported by the fake`);
  if (segments.length < 1 || segments.length > 2 || !/^[A-Z][A-Za-z]+$/.test(segments[0])) {
    return fail(404, 'not-found', 'Unknown FHIR path');
  }
  const [type, id] = segments;
  const interaction = id === undefined ? 'search' : 'read';
  const { allowed, patientOnly } = scopeAllows(access.scopes, type, interaction);
  if (!allowed) {
    // Epic's troubleshooting, RFC 6750 §3.1: a scope problem is a 403 with error="insufficient_scope".
    return fail(403, 'forbidden', `The access token has no scope to ${interaction} ${type}`, {
      'WWW-Authenticate': `Bearer error="insufficient_scope", error_description="${type}.${interaction}"`,
    });
  }
  const compartment = patientOnly && !NON_COMPARTMENT.has(type);
  const notAuthorized = () =>
    fail(403, 'forbidden', 'The authenticated user is not authorized to view the requested data.');
  if (compartment && !access.patient) return notAuthorized();

  if (id !== undefined) {
    const resource = store.get(type, id);
    if (!resource) return fail(404, 'not-found', `${type}/${id} was not found`);
    if (compartment && patientOf(resource) !== access.patient) return notAuthorized();
    return reply.json(200, resource, {}, FHIR_JSON);
  }

  const params = new URLSearchParams(query);
  if (compartment && NEEDS_PATIENT.has(type)) {
    const asked = params.get('patient') ?? params.get('subject');
    if (asked !== null && ref(asked) !== access.patient) return notAuthorized();
    if (asked === null) params.set('patient', access.patient as string);
  }
  if (NEEDS_PATIENT.has(type) && !params.has('patient') && !params.has('subject')) {
    return fail(400, 'required', `Searching ${type} needs the patient or subject parameter`);
  }
  const filters = FILTERS[type] ?? {};
  const matches = store.all(type).filter((resource) => {
    if (compartment && patientOf(resource) !== access.patient) return false;
    for (const [name, value] of params) {
      if (name === '_id' && !value.split(',').includes(resource.id)) return false;
      const filter = filters[name];
      if (filter && !filter(resource, value)) return false;
    }
    return true;
  });

  const count = Math.min(Math.max(Number(params.get('_count') ?? args.pageSize) || args.pageSize, 1), 100);
  const offset = Math.max(Number(params.get('_getpagesoffset') ?? 0) || 0, 0);
  const page = matches.slice(offset, offset + count);
  const pageUrl = (at: number) => {
    const p = new URLSearchParams(params);
    p.set('_count', String(count));
    p.set('_getpagesoffset', String(at));
    return `${fhirBase}/${type}?${p.toString()}`;
  };
  const link = [{ relation: 'self', url: `${fhirBase}/${type}${query.size ? `?${query.toString()}` : ''}` }];
  if (offset + count < matches.length) link.push({ relation: 'next', url: pageUrl(offset + count) });
  if (offset > 0) link.push({ relation: 'previous', url: pageUrl(Math.max(offset - count, 0)) });
  reply.json(
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
