import { Controller, Get, Module, Param } from '@nestjs/common';
import { IsString, MaxLength } from 'class-validator';
import type { Bundle } from 'fhir/r4';

import { HtmlRoutes, OrgScope, Roles } from 'src/common/decorators/auth.decorators';
import { FhirClientModule } from 'src/fhir-client/fhir-client.module';
import { FhirClientService } from 'src/fhir-client/fhir-client.service';
import { OrgIdParam } from 'src/organizations/dto/organization.dto';
import { Role } from 'src/users/user.types';

import { connectedOrganization, registeredOrganization } from 'test/factories/epic-connection';
import { FakeEpic, SEED, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

class PatientParams extends OrgIdParam {
  @IsString() @MaxLength(64) id!: string;
}

/*
 * No route of the app lets a FhirClientError escape today (the connection test reports it as a
 * step, the pages show it in place), so these probe routes call the real FhirClientService for an
 * organization and catch nothing, as a thin controller would; the app's own guards, pipe and
 * filters answer.
 */
@Controller('probe/fhir/:orgId')
@Roles(Role.RootAdmin, Role.OrgAdmin)
class FhirProbeController {
  constructor(private readonly fhir: FhirClientService) {}

  @Get('patient/:id')
  @OrgScope()
  patient(@Param() { orgId, id }: PatientParams): Promise<unknown> {
    return this.fhir.forOrganization(orgId).read('Patient', id);
  }

  @Get('observations')
  @OrgScope()
  observations(@Param() { orgId }: OrgIdParam): Promise<Bundle> {
    return this.fhir.forOrganization(orgId).search('Observation', { patient: SEED.camila });
  }
}

@Controller('probe/page/:orgId')
@Roles(Role.RootAdmin, Role.OrgAdmin)
@HtmlRoutes()
class FhirProbePageController {
  constructor(private readonly fhir: FhirClientService) {}

  @Get('patient')
  @OrgScope()
  patient(@Param() { orgId }: OrgIdParam): Promise<unknown> {
    return this.fhir.forOrganization(orgId).read('Patient', SEED.camila);
  }
}

@Module({ imports: [FhirClientModule], controllers: [FhirProbeController, FhirProbePageController] })
class FhirProbeModule {}

describe('a FhirClientError that escapes a controller answers its code, never a 500', () => {
  let t: TestApp;
  let epic: FakeEpic;

  beforeAll(async () => {
    [t, epic] = await Promise.all([
      createTestApp({ modules: [FhirProbeModule], env: { FHIR_RETRY_MAX_WAIT_SECONDS: '10' } }),
      startFakeEpic(),
    ]);
  });
  afterAll(async () => {
    await epic.close();
    await t.close();
  });
  afterEach(() => epic.clearFaults());

  it('not connected: 409 NOT_CONNECTED on a JSON route, the code EpicAuth uses for the same state', async () => {
    const { orgId, admin } = await registeredOrganization(t, epic); // registered, never connected
    const res = await admin.agent.get(`/probe/fhir/${orgId}/patient/${SEED.camila}`).expect(409);
    expect(res.type).toBe('application/json');
    expect(res.body).toEqual({
      statusCode: 409,
      code: 'NOT_CONNECTED',
      message: expect.stringMatching(/not connected/) as string,
    });
  });

  it('not connected: a 409 page on a browser route, linking back to the organization', async () => {
    const { orgId, admin } = await registeredOrganization(t, epic);
    const res = await admin.agent.get(`/probe/page/${orgId}/patient`).expect(409);
    expect(res.type).toBe('text/html');
    expect(res.text).toMatch(/<p class="alert bad">This organization is not connected/);
    expect(res.text).toContain(`<a href="/admin/organizations/${orgId}">Back to the organization</a>`);
  });

  it('the server unavailable: 503 EPIC_UNAVAILABLE with the Retry-After it asked for', async () => {
    const { orgId, admin } = await connectedOrganization(t, epic);
    // Longer than FHIR_RETRY_MAX_WAIT_SECONDS: not waited for, the caller is told when to come back.
    epic.failNext('fhir', { status: 503, retryAfter: 120 });
    const res = await admin.agent.get(`/probe/fhir/${orgId}/observations`).expect(503);
    expect(res.headers['retry-after']).toBe('120');
    expect(res.body).toMatchObject({ statusCode: 503, code: 'EPIC_UNAVAILABLE' });
  });

  it('a FHIR 4xx: 502 FHIR_REQUEST_FAILED with the OperationOutcome text, the connection intact', async () => {
    const { orgId, admin } = await connectedOrganization(t, epic);
    const res = await admin.agent.get(`/probe/fhir/${orgId}/patient/no-such-patient`).expect(502);
    expect(res.body).toEqual({
      statusCode: 502,
      code: 'FHIR_REQUEST_FAILED',
      message: 'Epic answered HTTP 404: Patient/no-such-patient was not found',
    });
    await admin.agent.get(`/probe/fhir/${orgId}/patient/${SEED.camila}`).expect(200);
  });
});
