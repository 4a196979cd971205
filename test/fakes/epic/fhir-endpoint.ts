import { advertisedEndpoints, capabilityStatement, capabilityStatementXml } from './discovery';
import { FHIR_JSON, handleFhir, operationOutcome } from './fhir-api';
import type { Exchange } from './http';
import type { FakeEpicState } from './state';

/** The FHIR R4 API behind bearer tokens, and its `/metadata`. Search and read live in fhir-api.ts. */
export class FhirEndpoint {
  constructor(private readonly state: FakeEpicState) {}

  /** `{fhirBase}/…`: checks the bearer token, then reads or searches. */
  handle(x: Exchange): void {
    const { fhirBase, fhirPath } = this.state.urls;
    const header = x.req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const realm = `realm="${fhirBase}"`;
    if (!match) {
      // RFC 6750 §3.1: no credentials, so no error code in the challenge.
      x.entry.rejection = 'no bearer token';
      return x.json(
        401,
        operationOutcome('login', 'Authentication required'),
        { 'WWW-Authenticate': `Bearer ${realm}` },
        FHIR_JSON,
      );
    }
    const record = this.state.accessTokens.get(match[1]);
    const problem = record ? this.state.accessTokenProblem(record) : 'The access token is unknown';
    if (!record || problem) {
      x.entry.rejection = problem;
      return x.json(
        401,
        operationOutcome('login', problem ?? 'invalid token'),
        { 'WWW-Authenticate': `Bearer ${realm}, error="invalid_token", error_description="${problem}"` },
        FHIR_JSON,
      );
    }
    x.entry.clientId = record.clientId;
    const segments = x.url.pathname
      .slice(fhirPath.length + 1)
      .split('/')
      .filter(Boolean);
    handleFhir({
      method: x.req.method ?? 'GET',
      segments,
      query: x.url.searchParams,
      access: { scopes: record.scopes, patient: record.patient },
      store: this.state.store,
      fhirBase,
      pageSize: this.state.options.defaultPageSize,
      reply: {
        json: (status, body, headers, contentType) => {
          if (status >= 400) x.entry.rejection = JSON.stringify(body);
          x.json(status, body, headers, contentType);
        },
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
      x.json(200, capabilityStatement(fhirBase, endpoints), {}, FHIR_JSON);
    } else {
      x.text(200, capabilityStatementXml(fhirBase, endpoints), 'application/fhir+xml;charset=utf-8');
    }
  }
}
