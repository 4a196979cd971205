import { SEED } from './fhir-data';
import { withParams, type Exchange } from './http';
import type { FakeEpicState } from './state';
import type { FakeEpicLaunchContext } from './types';

/** `FakeEpic.launchContext`: mints and records a one-time launch token (docs/epic-and-smart.md §7). */
export function issueLaunch(
  state: FakeEpicState,
  context: FakeEpicLaunchContext,
): { iss: string; launch: string } {
  const launch = state.mint('launch', { client_id: context.clientId });
  state.launches.set(launch, {
    context: { ...context, practitioner: context.practitioner ?? SEED.practitioner },
    expiresAt: state.now() + state.options.launchTokenLifetimeSeconds * 1000,
    used: false,
  });
  return { iss: state.urls.fhirBase, launch };
}

/** `appLaunchUrl?iss=…&launch=…`: the URL Epic opens for an EHR launch. */
export function buildEhrLaunchUrl(
  state: FakeEpicState,
  appLaunchUrl: string,
  context: FakeEpicLaunchContext,
): string {
  const { iss, launch } = issueLaunch(state, context);
  return withParams(appLaunchUrl, { iss, launch });
}

/** `ehrLaunchEndpoint`: a browser-friendly EHR launch for local demos. */
export function ehrLaunchEndpoint(state: FakeEpicState, x: Exchange): void {
  const q = x.url.searchParams;
  const launchUrl = q.get('launch_url') ?? '';
  if (!/^https?:\/\//.test(launchUrl)) {
    return x.text(400, 'launch_url (http or https) is required', 'text/plain');
  }
  const context: FakeEpicLaunchContext = {
    patient: q.get('patient') ?? SEED.camila,
    encounter: q.get('encounter') ?? undefined,
    practitioner: q.get('practitioner') ?? undefined,
    clientId: q.get('client_id') ?? undefined,
  };
  x.redirect(buildEhrLaunchUrl(state, launchUrl, context));
}
