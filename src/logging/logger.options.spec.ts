import { AxiosError, AxiosHeaders } from 'axios';

import type { AppConfig } from 'src/config/app-config';

import { loggerParams } from './logger.options';

describe('the logged error', () => {
  const params = loggerParams({ env: { LOG_LEVEL: 'info', NODE_ENV: 'test' } } as unknown as AppConfig);
  const options = (Array.isArray(params.pinoHttp) ? params.pinoHttp[0] : params.pinoHttp) as {
    serializers: { err: (err: Error) => Record<string, unknown> };
  };

  it('keeps no request or answer of an HTTP client error, however deep its cause', () => {
    const request = {
      url: 'https://ehr.example.org/fhir/Patient?name=Jane%20Doe',
      headers: new AxiosHeaders({ Authorization: 'Bearer upstream-token' }),
      data: '{"resourceType":"Patient","name":[{"family":"Doe"}]}',
    };
    const upstream = new AxiosError(
      'Request failed with status code 500',
      'ERR_BAD_RESPONSE',
      request,
      {},
      {
        status: 500,
        statusText: 'Server Error',
        headers: {},
        config: request,
        data: { issue: [{ diagnostics: 'Jane Doe' }] },
      },
    );
    const wrapped = new Error('The FHIR server failed', {
      cause: new Error('retries used up', { cause: upstream }),
    });

    for (const error of [upstream, wrapped]) {
      const logged = JSON.stringify(options.serializers.err(error));
      expect(logged).toContain('Request failed with status code 500');
      for (const leak of ['Jane', 'Doe', 'upstream-token', 'name=']) expect(logged).not.toContain(leak);
    }
  });
});
