import { Injectable, Logger } from '@nestjs/common';

import { AuditActor, AuditService } from 'src/audit/audit.service';
import { DomainError } from 'src/common/errors/domain-error';
import { organizationScopes } from 'src/epic-auth/authorization.types';
import { ConnectionLifecycleService } from 'src/epic-auth/connection-lifecycle.service';
import { CredentialsCheckService } from 'src/epic-auth/credentials-check.service';
import { SmartDiscoveryService } from 'src/epic-auth/smart-discovery.service';
import { ConnectionsService } from 'src/connections/connections.service';
import { TokenStoreService } from 'src/connections/token-store.service';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { ConnectionMode, speakOfServer, TokenAuthMethod } from 'src/organizations/organization.types';

import { FhirClientError, FhirErrorKind } from './fhir-client.errors';
import { FhirClientService } from './fhir-client.service';

export interface TestStep {
  name: string;
  ok: boolean;
  message: string;
  durationMs: number;
}

export interface TestLayer {
  ok: boolean;
  message: string;
  durationMs: number;
  steps: TestStep[];
}

/** What `POST /fhir/test-epic-connection` answers (the registration page's Test Connection, two layers). */
export interface ConnectionTestResult {
  ok: boolean;
  organizationId: string;
  testedAt: string;
  configuration: TestLayer;
  live: TestLayer;
}

/** A step that fails throws StepFailure with its message; any other error is unexpected. */
class StepFailure extends Error {}

/** Runs steps in order, timing each, until one fails. */
class LayerRun {
  readonly steps: TestStep[] = [];
  private failed = false;

  constructor(private readonly logger: Logger) {}

  async step(name: string, work: () => Promise<string> | string): Promise<boolean> {
    if (this.failed) return false;
    const started = performance.now();
    let ok = true;
    let message: string;
    try {
      message = await work();
    } catch (error) {
      ok = false;
      // A coded error's message is written to be shown (EpicAuth, FhirClient, a stored secret).
      if (error instanceof StepFailure || error instanceof DomainError) {
        message = error.message;
      } else {
        // Still a result (and audited): the admin sees which step broke; the cause goes to the log.
        this.logger.error({ err: error, step: name }, `Connection test step "${name}" failed unexpectedly`);
        message = 'Unexpected error while testing; the details are in the service log.';
      }
    }
    this.steps.push({ name, ok, message, durationMs: Math.round(performance.now() - started) });
    this.failed ||= !ok;
    return ok;
  }

  result(passed: string): TestLayer {
    const failing = this.steps.find((s) => !s.ok);
    return {
      ok: !failing,
      message: failing ? failing.message : passed,
      durationMs: this.steps.reduce((sum, s) => sum + s.durationMs, 0),
      steps: this.steps,
    };
  }
}

/**
 * Tests an organization's Epic connection in two layers: the configuration (registration,
 * discovery, an authorize URL), then a live call with the stored token (refreshing it if due).
 * Every result is audited; nothing here changes the registration.
 */
@Injectable()
export class ConnectionTestService {
  private readonly logger = new Logger(ConnectionTestService.name);

  constructor(
    private readonly organizations: OrganizationsService,
    private readonly discovery: SmartDiscoveryService,
    private readonly authorization: ConnectionLifecycleService,
    private readonly tokens: TokenStoreService,
    private readonly connections: ConnectionsService,
    private readonly fhir: FhirClientService,
    private readonly audit: AuditService,
    private readonly credentialsCheck: CredentialsCheckService,
  ) {}

  async run(actor: AuditActor, organizationId: string): Promise<ConnectionTestResult> {
    const org = await this.organizations.get(organizationId);
    const registration = await this.organizations.getEpicRegistration(organizationId);
    // The steps' messages are written for Epic; another server is called by its name.
    const server = registration && { isEpic: registration.isEpic, name: registration.serverName };
    const speak = (message: string) => (server ? speakOfServer(message, server) : message);
    const said = (layer: TestLayer): TestLayer => ({
      ...layer,
      message: speak(layer.message),
      steps: layer.steps.map((step) => ({ ...step, message: speak(step.message) })),
    });
    const configuration = said(await this.testConfiguration(organizationId));
    const live = said(await this.testLive(organizationId));
    const result: ConnectionTestResult = {
      ok: configuration.ok && live.ok,
      organizationId,
      testedAt: new Date().toISOString(),
      configuration,
      live,
    };
    const failedStep = [...configuration.steps, ...live.steps].find((s) => !s.ok)?.name;
    await this.audit.record({
      actor,
      organization: { id: org.id, name: org.name },
      action: 'epic.connection-test',
      outcome: result.ok ? 'success' : 'failure',
      detail: { configuration: configuration.ok, live: live.ok, ...(failedStep ? { failedStep } : {}) },
    });
    this.logger.log(
      { orgId: organizationId, ok: result.ok, failedStep: failedStep ?? null },
      `Tested the Epic connection of organization ${organizationId}`,
    );
    return result;
  }

  private async testConfiguration(organizationId: string): Promise<TestLayer> {
    const run = new LayerRun(this.logger);
    const registration = await this.organizations.getEpicRegistration(organizationId);
    const info = await this.authorization.registrationInfo(organizationId);
    const backend = registration?.connectionMode === ConnectionMode.Backend;
    await run.step('registration', () => {
      if (!registration) {
        throw new StepFailure(
          'No Epic client is registered: enter the client ID and FHIR base URL, then save.',
        );
      }
      const base = `Client ID and FHIR base URL are set (${registration.fhirBaseUrl})`;
      if (registration.tokenAuthMethod === TokenAuthMethod.PrivateKeyJwt) {
        const mode = backend ? ', connecting as a backend service' : '';
        return `${base}${mode}; the client authenticates with private_key_jwt (${registration.assertionAlg} key): the JWK Set URL registered at Epic must be ${info.jwksUrl}.`;
      }
      return registration.hasClientSecret
        ? `${base}; a client secret is saved.`
        : `${base}; no client secret is saved, so Epic will treat the app as a public client without refresh tokens.`;
    });
    let authorizationEndpoint = '';
    await run.step('discovery', async () => {
      const base = registration!.fhirBaseUrl;
      this.discovery.forget(base); // a test must reach the server, not the cache
      try {
        const server = await this.discovery.discoverFor(registration!);
        authorizationEndpoint = server.authorizationEndpoint;
        return `Found the SMART configuration: authorize at ${server.authorizationEndpoint}, tokens at ${server.tokenEndpoint}.`;
      } catch (error) {
        throw new StepFailure((error as Error).message);
      }
    });
    // Before anyone signs in: does the token endpoint accept the client (secret, Basic encoding, JWK Set)?
    await run.step('credentials', async () => {
      const checked = await this.credentialsCheck.check(organizationId);
      if (!checked.ok) throw new StepFailure(checked.message);
      return checked.message;
    });
    if (backend) {
      // A backend service never sends anyone to the authorize endpoint.
      return run.result(
        'The Epic registration is complete, the server answers discovery and accepts the client.',
      );
    }
    await run.step('authorize-url', () => {
      const url = new URL(authorizationEndpoint);
      url.searchParams.set('response_type', 'code');
      url.searchParams.set('client_id', registration!.clientId);
      url.searchParams.set('redirect_uri', this.authorization.redirectUri);
      url.searchParams.set('scope', organizationScopes(registration!));
      url.searchParams.set('aud', registration!.fhirBaseUrl);
      return `An authorize request can be built with redirect URI ${this.authorization.redirectUri} (register it at Epic exactly).`;
    });
    return run.result(
      'The Epic registration is complete, the server answers discovery and accepts the client.',
    );
  }

  private async testLive(organizationId: string): Promise<TestLayer> {
    const run = new LayerRun(this.logger);
    const client = this.fhir.forOrganization(organizationId);
    const credential = await this.tokens.findActive({ organizationId });
    await run.step('token', async () => {
      if (!credential) {
        const org = await this.organizations.get(organizationId);
        const how =
          org.connectionMode === ConnectionMode.Backend
            ? 'use "Connect now" on the registration page (no sign-in at Epic)'
            : 'use "Connect to Epic" on the registration page, sign in at Epic and approve access';
        const lastError = (await this.connections.organizationStates([organizationId])).get(
          organizationId,
        )?.lastError;
        throw new StepFailure(
          lastError ? `Not connected: ${lastError} Then ${how}.` : `Not connected to Epic yet: ${how}.`,
        );
      }
      return credential.refreshable
        ? 'A stored token is present and can be renewed.'
        : 'A stored token is present (no refresh token: reconnect when it expires).';
    });
    await run.step('metadata', async () => {
      const statement = await client.capabilities();
      const software = statement.software?.name ? ` from ${statement.software.name}` : '';
      return `GET metadata answered: FHIR ${statement.fhirVersion ?? 'version unknown'}${software}.`;
    });
    await run.step('patient', async () => {
      try {
        if (credential!.patientId) {
          const patient = await client.read('Patient', credential!.patientId);
          return `Read Patient/${patient.id} with the stored token.`;
        }
        const bundle = await client.search('Patient', { _count: 1 });
        return `Searched Patient with the stored token (${bundle.total ?? bundle.entry?.length ?? 0} found).`;
      } catch (error) {
        if (error instanceof FhirClientError && error.kind === FhirErrorKind.Request) {
          if (error.status === 403) {
            throw new StepFailure(
              'Epic accepted the token but refused Patient data (HTTP 403): add a Patient read scope to the registration at Epic and here, then reconnect.',
            );
          }
          if (error.status === 400) {
            return 'Epic accepted the token; it requires search parameters for Patient searches (HTTP 400), which is expected.';
          }
        }
        throw error;
      }
    });
    return run.result('Epic answered live requests with the stored token.');
  }
}
