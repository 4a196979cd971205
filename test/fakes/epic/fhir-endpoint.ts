import { BulkData } from './bulk-data';
import { advertisedEndpoints, capabilityStatement, capabilityStatementXml } from './discovery';
import { FHIR_JSON, handleFhir, operationOutcome } from './fhir-api';
import type { Exchange } from './http';
import type { AccessTokenRecord, FakeEpicState } from './state';

/** The FHIR R4 API behind bearer tokens, and its `/metadata`. The interactions live in fhir-api.ts. */
export class FhirEndpoint {
  private readonly bulk: BulkData;

  constructor(private readonly state: FakeEpicState) {
    this.bulk = new BulkData(state);
  }

  /** `{fhirBase}/…`: checks the bearer token, then serves the interaction (Bulk Data: bulk-data.ts). */
  handle(x: Exchange, body: string): void {
    const { fhirPath } = this.state.urls;
    const record = this.bearer(x);
    if (!record) return;
    x.entry.clientId = record.clientId;
    const segments = x.url.pathname
      .slice(fhirPath.length + 1)
      .split('/')
      .filter(Boolean);
    if (BulkData.handles(segments)) return this.bulk.handle(x, segments, record);
    this.serve(x, body, segments, record);
  }

  /** `{origin}${BULK_FILES_PATH}/…`: Bulk Data files outside the FHIR base (`files: 'elsewhere'`). */
  bulkFile(x: Exchange): void {
    const token = /^Bearer\s+(\S+)$/i.exec(x.req.headers.authorization ?? '')?.[1];
    const record = token === undefined ? undefined : this.state.accessTokens.get(token);
    const valid = record && !this.state.accessTokenProblem(record) ? record : undefined;
    if (valid) x.entry.clientId = valid.clientId;
    this.bulk.externalFile(x, valid);
  }

  /** The access token of the request, or undefined after answering 401 (RFC 6750 §3.1). */
  private bearer(x: Exchange): AccessTokenRecord | undefined {
    const { fhirBase } = this.state.urls;
    const header = x.req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const realm = `realm="${fhirBase}"`;
    if (!match) {
      // RFC 6750 §3.1: no credentials, so no error code in the challenge.
      x.entry.rejection = 'no bearer token';
      x.json(
        401,
        operationOutcome('login', 'Authentication required'),
        { 'WWW-Authenticate': `Bearer ${realm}` },
        FHIR_JSON,
      );
      return undefined;
    }
    const record = this.state.accessTokens.get(match[1]);
    const problem = record ? this.state.accessTokenProblem(record) : 'The access token is unknown';
    if (!record || problem) {
      x.entry.rejection = problem;
      x.json(
        401,
        operationOutcome('login', problem ?? 'invalid token'),
        { 'WWW-Authenticate': `Bearer ${realm}, error="invalid_token", error_description="${problem}"` },
        FHIR_JSON,
      );
      return undefined;
    }
    return record;
  }

  private serve(x: Exchange, body: string, segments: string[], record: AccessTokenRecord): void {
    const { fhirBase } = this.state.urls;
    const escape = this.state.options.jsonSlashEscaping;
    handleFhir({
      method: x.req.method ?? 'GET',
      segments,
      query: x.url.searchParams,
      headers: x.req.headers,
      body,
      access: { scopes: record.scopes, patient: record.patient },
      store: this.state.store,
      fhirBase,
      options: {
        pageSize: this.state.options.defaultPageSize,
        locationHeader: this.state.options.locationHeader,
        pagingLinks: this.state.options.pagingLinks,
      },
      searches: this.state.searches,
      large: this.state.largeSearches,
      reply: {
        json: (status, answer, headers = {}, contentType) => {
          if (status >= 400) x.entry.rejection = JSON.stringify(answer);
          if (!escape) return x.json(status, answer, headers, contentType);
          // JSON allows "\/" and "\u002F" for "/" (RFC 8259 §7): written so with the jsonSlashEscaping switch.
          x.entry.responseBody = answer;
          x.text(status, escapeSlashes(JSON.stringify(answer), escape), contentType ?? FHIR_JSON, headers);
        },
        empty: (status, headers) => x.empty(status, headers),
        stream: (status, stream, headers = {}, contentType) =>
          x.stream(status, stream, { 'Content-Type': contentType ?? FHIR_JSON, ...headers }),
      },
    });
  }

  /** Epic: `/metadata` is XML unless the client asks for JSON (docs/epic-and-smart.md §1). */
  metadata(x: Exchange): void {
    const { fhirBase } = this.state.urls;
    const accept = String(x.req.headers.accept ?? '').toLowerCase();
    const format = x.url.searchParams.get('_format') ?? '';
    const endpoints = advertisedEndpoints(this.state, x.req);
    if (/application\/(fhir\+)?json/.test(accept) || format.includes('json')) {
      const statement = capabilityStatement(fhirBase, endpoints);
      if (!this.state.options.jsonSlashEscaping) return x.json(200, statement, {}, FHIR_JSON);
      x.entry.responseBody = statement;
      x.text(200, escapeSlashes(JSON.stringify(statement), this.state.options.jsonSlashEscaping), FHIR_JSON);
    } else {
      x.text(200, capabilityStatementXml(fhirBase, endpoints), 'application/fhir+xml;charset=utf-8');
    }
  }
}

/** JSON text with every `/` escaped as the jsonSlashEscaping switch says (`\/`, or `\u002F` for 'unicode'). */
function escapeSlashes(json: string, mode: true | 'unicode'): string {
  return json.replace(/\//g, mode === 'unicode' ? '\\u002F' : '\\/');
}
