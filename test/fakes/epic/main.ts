/**
 * `npm run fake-epic`: a fake Epic on a fixed port with one sample confidential client, to try the
 * service end to end on one machine. A development aid, not Epic (see README.md).
 *
 * Environment: FAKE_EPIC_PORT (default 4010), FAKE_EPIC_REDIRECT_URI (default
 * http://localhost:3000/fhir/epic-callback), FAKE_EPIC_CLIENT_ID, FAKE_EPIC_CLIENT_SECRET,
 * FAKE_EPIC_AUDIENCE (`provider`, the default, or `patient` for a MyChart app), FAKE_EPIC_LAUNCH_URL
 * (the app's EHR launch URL, default http://localhost:3000/fhir/epic-launch).
 */
import { DEFAULT_REDIRECT_URI, startFakeEpic } from './fake-epic';
import { SEED } from './fhir-data';

async function main(): Promise<void> {
  const port = Number(process.env.FAKE_EPIC_PORT ?? 4010);
  const redirectUri = process.env.FAKE_EPIC_REDIRECT_URI ?? DEFAULT_REDIRECT_URI;
  const audience = process.env.FAKE_EPIC_AUDIENCE === 'patient' ? 'patient' : 'provider';
  const launchUrl = process.env.FAKE_EPIC_LAUNCH_URL ?? 'http://localhost:3000/fhir/epic-launch';
  const epic = await startFakeEpic({ port, consentPage: true, ehrLaunchEndpoint: true });
  const client = epic.registerClient({
    clientId: process.env.FAKE_EPIC_CLIENT_ID ?? 'fake-epic-sample-client',
    secret: process.env.FAKE_EPIC_CLIENT_SECRET ?? 'fake-epic-sample-secret',
    redirectUris: [redirectUri],
    audience,
    persistentAccess: true,
  });
  const ehrLaunch = new URL(`${epic.serverUrl}/fake-epic/ehr-launch`);
  ehrLaunch.search = new URLSearchParams({
    launch_url: launchUrl,
    patient: SEED.camila,
    encounter: SEED.camilaEncounter,
    client_id: client.clientId,
  }).toString();
  process.stdout.write(
    [
      'Fake Epic is running (a development aid, not Epic).',
      `  FHIR base:      ${epic.fhirBase}`,
      `  Client ID:      ${client.clientId}`,
      `  Client secret:  ${client.secret ?? ''}`,
      `  Redirect URI:   ${redirectUri}`,
      `  Audience:       ${audience} (persistent access on: refresh tokens are issued)`,
      `  Discovery:      ${epic.smartConfigurationUrl}`,
      `  Authorize:      ${epic.authorizeUrl}`,
      `  Token:          ${epic.tokenUrl}`,
      `  EHR launch:     ${ehrLaunch.toString()}`,
      '                  (open it in a browser: issues a one-time launch token and redirects to the app with iss and launch)',
      'The authorize endpoint shows a sign-in page: pick a user, then Allow or Deny.',
      'Press Ctrl+C to stop.',
      '',
    ].join('\n'),
  );
  const stop = () => {
    void epic.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`fake Epic failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
