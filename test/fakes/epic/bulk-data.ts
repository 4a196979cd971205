import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';

import { FHIR_JSON, operationOutcome } from './fhir-api';
import type { FhirResource } from './fhir-data';
import type { Exchange } from './http';
import { scopeAllows } from './scopes';
import type { AccessTokenRecord, FakeEpicState } from './state';

/** Where the fake serves output files with `bulkData({ files: 'elsewhere' })`: outside the FHIR base. */
export const BULK_FILES_PATH = '/fake-object-store/bulk';

/** NDJSON (Bulk Data IG, "Output File Request"). */
export const NDJSON = 'application/fhir+ndjson';

/** How the fake answers Bulk Data requests (`FakeEpic.bulkData`). */
export interface BulkDataSettings {
  /** Polls answered 202 (in progress) before the manifest. Default 2. */
  pollsBeforeDone: number;
  /** `Retry-After` (seconds) on an in-progress poll. Default 1. */
  retryAfterSeconds: number;
  /**
   * `fhir-base`: files at `{fhirBase}/BulkRequest/{job}/{file}` (Epic's layout); `elsewhere`: at
   * `{origin}${BULK_FILES_PATH}/{job}/{file}`, outside the FHIR base, as servers that hand files to
   * object storage do. Default `fhir-base`.
   */
  files: 'fhir-base' | 'elsewhere';
  /** The manifest's `requiresAccessToken`; with `true` files need the kick-off client's bearer. Default true. */
  requiresAccessToken: boolean;
  /** A generated file of `lines` resources of about `bytesPerLine` bytes replaces `type`'s (streaming tests). */
  largeFile?: { type: string; lines: number; bytesPerLine: number };
}

export const DEFAULT_BULK_SETTINGS: BulkDataSettings = {
  pollsBeforeDone: 2,
  retryAfterSeconds: 1,
  files: 'fhir-base',
  requiresAccessToken: true,
};

interface BulkFile {
  type: string;
  /** NDJSON lines; undefined for a generated large file. */
  lines?: string[];
  count: number;
}

/** One kick-off: what it exports (taken at kick-off), how far it got, who may read it. */
export interface BulkJob {
  id: string;
  clientId: string;
  request: string;
  transactionTime: string;
  polls: number;
  files: Map<string, BulkFile>;
}

/** Types exported without `_type` when the scopes name none (`system/*.read`). */
const DEFAULT_TYPES = ['Patient', 'Observation', 'Encounter'];
const NON_COMPARTMENT = new Set(['Practitioner', 'Organization', 'Location']);
const TYPE = /^[A-Z][A-Za-z]+$/;

function patientOf(resource: FhirResource): string | undefined {
  if (resource.resourceType === 'Patient') return resource.id;
  const subject = (resource.subject ?? resource.patient) as { reference?: string } | undefined;
  return subject?.reference?.startsWith('Patient/') ? subject.reference.slice('Patient/'.length) : undefined;
}

/**
 * FHIR Bulk Data Access (https://hl7.org/fhir/uv/bulkdata/export.html), as Epic lays it out:
 * kick-off `GET Patient/$export` or `GET Group/{id}/$export` (`Prefer: respond-async`) → 202 with
 * `Content-Location: {fhirBase}/BulkRequest/{job}`; polls → 202 (`X-Progress`, `Retry-After`) then
 * 200 with the manifest; `DELETE` on the status URL cancels (202); files are NDJSON. Status and
 * files answer only the client that kicked the job off (403 for another).
 */
export class BulkData {
  constructor(private readonly state: FakeEpicState) {}

  /** Whether a path under the FHIR base is Bulk Data's: a kick-off, a status URL or a file. */
  static handles(segments: string[]): boolean {
    const [first, , third] = segments;
    if (first === 'BulkRequest') return segments.length === 2 || segments.length === 3;
    if (first === 'Patient' && segments.length === 2) return segments[1] === '$export';
    if (first === 'Group' && segments.length === 3) return third === '$export';
    return false;
  }

  /** `{fhirBase}/…` Bulk Data paths, the bearer token already checked. */
  handle(x: Exchange, segments: string[], token: AccessTokenRecord): void {
    const method = x.req.method ?? 'GET';
    if (segments[0] !== 'BulkRequest') {
      if (method !== 'GET') return fail(x, 405, 'not-supported', 'The fake kicks off exports with GET only');
      return this.kickOff(x, segments, token);
    }
    const job = this.state.bulkJobs.get(segments[1]);
    if (!job) return fail(x, 404, 'not-found', 'No such export (finished, cancelled or unknown)');
    if (job.clientId !== token.clientId) {
      return fail(x, 403, 'forbidden', 'The export belongs to another client');
    }
    if (segments.length === 3) {
      if (method !== 'GET') return fail(x, 405, 'not-supported', 'Files are read with GET');
      return this.file(x, job, segments[2]);
    }
    if (method === 'DELETE') {
      this.state.bulkJobs.delete(job.id);
      return x.empty(202);
    }
    if (method !== 'GET') return fail(x, 405, 'not-supported', 'Poll with GET, cancel with DELETE');
    return this.status(x, job);
  }

  /** `{origin}${BULK_FILES_PATH}/{job}/{file}` (files `elsewhere`): the bearer checked here when required. */
  externalFile(x: Exchange, token: AccessTokenRecord | undefined): void {
    const [jobId, fileId, ...rest] = x.url.pathname.slice(BULK_FILES_PATH.length + 1).split('/');
    const job = this.state.bulkJobs.get(jobId);
    if (!job || !fileId || rest.length > 0) return x.text(404, 'Not Found', 'text/plain');
    if (this.state.bulk.requiresAccessToken && token?.clientId !== job.clientId) {
      x.entry.rejection = token ? 'another client' : 'no valid bearer token';
      return x.text(401, 'Unauthorized', 'text/plain', { 'WWW-Authenticate': 'Bearer' });
    }
    return this.file(x, job, fileId);
  }

  private kickOff(x: Exchange, segments: string[], token: AccessTokenRecord): void {
    const prefer = String(x.req.headers.prefer ?? '');
    if (!/(^|[,;\s])respond-async($|[,;\s])/.test(prefer)) {
      return fail(x, 400, 'invalid', 'Bulk Data kick-off requires the header Prefer: respond-async');
    }
    const accept = x.req.headers.accept;
    if (accept !== undefined && !/application\/fhir\+json|\*\/\*/.test(accept)) {
      return fail(x, 400, 'invalid', 'Bulk Data kick-off requires Accept: application/fhir+json');
    }
    const query = x.url.searchParams;
    const format = query.get('_outputFormat');
    if (format !== null && !['application/fhir+ndjson', 'application/ndjson', 'ndjson'].includes(format)) {
      return fail(x, 400, 'invalid', `Unsupported _outputFormat ${format}`);
    }
    let patients: Set<string> | undefined; // undefined: every patient
    if (segments[0] === 'Group') {
      const group = this.state.store.get('Group', segments[1]);
      if (!group) return fail(x, 404, 'not-found', `Group/${segments[1]} is not known`);
      const members = (group.member ?? []) as Array<{ entity?: { reference?: string } }>;
      patients = new Set(
        members
          .map((m) => m.entity?.reference ?? '')
          .filter((r) => r.startsWith('Patient/'))
          .map((r) => r.slice('Patient/'.length)),
      );
    }
    const named = query
      .getAll('_type')
      .flatMap((value) => value.split(','))
      .map((type) => type.trim())
      .filter(Boolean);
    const types = named.length > 0 ? [...new Set(named)] : this.typesOf(token.scopes);
    const bad = types.find((type) => !TYPE.test(type));
    if (bad) return fail(x, 400, 'invalid', `${bad} is not a resource type`);
    const refused = types.filter((type) => !scopeAllows(token.scopes, type, 'search').allowed);
    if (refused.length > 0) {
      return fail(x, 403, 'forbidden', `The token has no read scope for ${refused.join(', ')}`);
    }
    const job: BulkJob = {
      id: randomUUID(),
      clientId: token.clientId,
      request: `${this.state.urls.origin}${x.req.url ?? ''}`,
      transactionTime: new Date(this.state.now()).toISOString(),
      polls: 0,
      files: new Map(),
    };
    const large = this.state.bulk.largeFile;
    for (const type of types) {
      if (large?.type === type) {
        job.files.set(`${type}-1.ndjson`, { type, count: large.lines });
        continue;
      }
      const resources = this.state.store.all(type).filter((resource) => {
        if (!patients || NON_COMPARTMENT.has(type)) return true;
        const patient = patientOf(resource);
        return patient !== undefined && patients.has(patient);
      });
      // Types without resources get no file (Bulk Data IG: "output" lists only non-empty files).
      if (resources.length === 0) continue;
      const lines = resources.map((resource) => JSON.stringify(resource));
      job.files.set(`${type}-1.ndjson`, { type, lines, count: lines.length });
    }
    this.state.bulkJobs.set(job.id, job);
    x.empty(202, { 'Content-Location': `${this.state.urls.fhirBase}/BulkRequest/${job.id}` });
  }

  /** The types named by the token's read scopes, or the seeded ones for `*`. */
  private typesOf(scopes: string[]): string[] {
    const named = scopes
      .map((scope) => /^(?:system|user|patient)\/([A-Za-z]+)\.(?:read|Read|\*|c?ru?d?s?)$/.exec(scope)?.[1])
      .filter((type): type is string => type !== undefined);
    return named.length > 0 ? [...new Set(named)] : DEFAULT_TYPES;
  }

  private status(x: Exchange, job: BulkJob): void {
    const { pollsBeforeDone, retryAfterSeconds, files, requiresAccessToken } = this.state.bulk;
    if (job.polls < pollsBeforeDone) {
      job.polls += 1;
      return x.empty(202, {
        'X-Progress': `Processing (${job.polls} of ${pollsBeforeDone})`,
        'Retry-After': String(retryAfterSeconds),
      });
    }
    const fileBase =
      files === 'elsewhere'
        ? `${this.state.urls.origin}${BULK_FILES_PATH}/${job.id}`
        : `${this.state.urls.fhirBase}/BulkRequest/${job.id}`;
    x.json(
      200,
      {
        transactionTime: job.transactionTime,
        request: job.request,
        requiresAccessToken,
        output: [...job.files].map(([fileId, file]) => ({
          type: file.type,
          url: `${fileBase}/${fileId}`,
          count: file.count,
        })),
        error: [],
      },
      {},
      'application/json;charset=utf-8',
    );
  }

  private file(x: Exchange, job: BulkJob, fileId: string): void {
    const file = job.files.get(fileId);
    if (!file) return fail(x, 404, 'not-found', `No file ${fileId} in this export`);
    const body = file.lines
      ? Readable.from(file.lines.map((line) => `${line}\n`))
      : this.largeFile(file.type, this.state.bulk.largeFile!);
    x.stream(200, body, { 'Content-Type': NDJSON });
  }

  /**
   * `lines` resources written one piece at a time (never held whole); each references the patient by
   * an absolute URL under the FHIR base, so a gateway's rewriting shows. Counts what it produced.
   */
  private largeFile(type: string, size: { lines: number; bytesPerLine: number }): Readable {
    const { fhirBase } = this.state.urls;
    const state = this.state;
    // Pieces of up to 64 lines: one write per line would measure the piping, not the gateway.
    function* lines(): Generator<string> {
      for (let first = 0; first < size.lines; first += 64) {
        let piece = '';
        for (let i = first; i < Math.min(first + 64, size.lines); i++) {
          const head = `{"resourceType":"${type}","id":"bulk-${i}","subject":{"reference":"${fhirBase}/Patient/p-${i}"},"note":[{"text":"`;
          piece += `${head}${'x'.repeat(Math.max(0, size.bytesPerLine - head.length - 5))}"}]}\n`;
        }
        state.bulkBytesProduced += piece.length;
        yield piece;
      }
    }
    return Readable.from(lines());
  }
}

function fail(x: Exchange, status: number, code: string, message: string): void {
  x.entry.rejection = message;
  x.json(status, operationOutcome(code, message), {}, FHIR_JSON);
}
