import { Inject, Injectable } from '@nestjs/common';
import { AxiosInstance, AxiosResponse, InternalAxiosRequestConfig, isAxiosError } from 'axios';

import { APP_CONFIG, AppConfig } from 'src/config/app-config';

import { FhirCall, FhirCallPolicy } from './fhir-call-policy';
import { FhirClientError, FhirErrorKind, operationOutcomeText } from './fhir-client.errors';
import { isIdempotent, isTransientFailure } from './retry-policy';

declare module 'axios' {
  interface AxiosRequestConfig {
    /** Present on requests made through FhirClient. */
    fhir?: FhirCall;
  }
}

/**
 * The axios interceptors of FhirClient's private instance, around FhirCallPolicy:
 * - request: the connection's credential (renewed first when due), its bearer token and the
 *   organization's FHIR base;
 * - response: on 401 renew and replay once; on a network error, timeout, 5xx or 429 retry idempotent
 *   requests with backoff (honouring Retry-After); turn everything else into a FhirClientError;
 *   record lastSync, lastError and recoveries on the connection.
 * The gateway's forwarded requests do not come here: FhirForwarder sends them with node:http,
 * around the same policy.
 */
@Injectable()
export class FhirInterceptors {
  constructor(
    private readonly policy: FhirCallPolicy,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  install(instance: AxiosInstance): void {
    instance.interceptors.request.use((config) => this.beforeRequest(config));
    instance.interceptors.response.use(
      (response) => this.afterSuccess(response),
      (error: unknown) => this.afterFailure(instance, error),
    );
  }

  private async beforeRequest(config: InternalAxiosRequestConfig): Promise<InternalAxiosRequestConfig> {
    const ctx = config.fhir;
    if (!ctx) return config;
    const credential = await this.policy.credentialFor(ctx);
    config.baseURL = `${credential.fhirBaseUrl}/`;
    const url = config.url;
    const absolute = url !== undefined && (/^[a-z][a-z0-9+.-]*:/i.test(url) || url.startsWith('//'));
    const underBase =
      url !== undefined &&
      (url.startsWith(config.baseURL) ||
        url === credential.fhirBaseUrl ||
        url.startsWith(`${credential.fhirBaseUrl}?`));
    if (absolute && !underBase) {
      // A paging link elsewhere would receive the bearer token: never follow it.
      throw new FhirClientError(FhirErrorKind.Request, 'Epic returned a link outside its FHIR base URL.', {
        organizationId: credential.organizationId,
      });
    }
    config.headers.set('Authorization', this.policy.authorization(credential));
    return config;
  }

  private async afterSuccess(response: AxiosResponse): Promise<AxiosResponse> {
    const ctx = response.config.fhir;
    if (ctx?.credential) await this.policy.answered(ctx, 'success');
    return response;
  }

  private async afterFailure(instance: AxiosInstance, error: unknown): Promise<AxiosResponse> {
    if (!isAxiosError(error) || !error.config?.fhir?.credential) throw error; // ours, or not a FHIR call
    const config = error.config;
    const ctx = config.fhir!;
    const orgId = ctx.credential!.organizationId;
    const status = error.response?.status;

    if (status === 401) {
      await this.policy.rejected(ctx);
      return instance.request(config);
    }

    if (isTransientFailure(status, error.code)) {
      const next = await this.policy.failed(
        ctx,
        {
          status,
          code: error.code,
          retryAfter: error.response?.headers?.['retry-after'],
          error,
        },
        {
          retryable: isIdempotent(config.method),
          maxWaitMs: this.config.env.FHIR_RETRY_MAX_WAIT_SECONDS * 1000,
        },
      );
      if ('error' in next) throw next.error;
      await new Promise((resolve) => setTimeout(resolve, next.delayMs));
      return instance.request(config);
    }

    // A FHIR error: the connection works, the request does not. Reading the data Epic holds.
    const body: unknown = error.response?.data;
    const text = operationOutcomeText(body);
    await this.policy.answered(ctx, 'fhir_error');
    throw new FhirClientError(
      FhirErrorKind.Request,
      status === undefined
        ? `The call to Epic could not be made (${error.code ?? 'error'}).`
        : text
          ? `Epic answered HTTP ${status}: ${text}`
          : `Epic answered HTTP ${status}.`,
      {
        organizationId: orgId,
        status,
        operationOutcome: text ? (body as FhirClientError['operationOutcome']) : undefined,
      },
    );
  }
}
