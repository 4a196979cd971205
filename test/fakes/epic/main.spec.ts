// `npm run fake-epic`: starts, prints what an admin needs, and serves a sign-in page a browser can complete.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');

describe('npm run fake-epic (main.ts)', () => {
  let child: ChildProcessWithoutNullStreams;
  let printed: Record<string, string>;

  beforeAll(async () => {
    child = spawn(join(ROOT, 'node_modules', '.bin', 'tsx'), [join(__dirname, 'main.ts')], {
      cwd: ROOT,
      env: {
        ...process.env,
        FAKE_EPIC_PORT: '0',
        FAKE_EPIC_REDIRECT_URI: 'http://localhost:3999/fhir/epic-callback',
      },
    });
    const output = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('Ctrl+C')) resolve(text);
      });
      child.once('exit', (code) => reject(new Error(`main.ts exited with ${code}: ${text}`)));
    });
    printed = Object.fromEntries(
      [...output.matchAll(/^ {2}([A-Za-z ]+?):\s+(\S+)/gm)].map((m) => [m[1].trim(), m[2]]),
    );
  }, 20_000);

  afterAll(async () => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  });

  it('prints the FHIR base, client id, secret and redirect URI', () => {
    expect(printed['FHIR base']).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+\/interconnect-fhir-oauth\/api\/FHIR\/R4$/,
    );
    expect(printed['Client ID']).toBe('fake-epic-sample-client');
    expect(printed['Client secret']).toBe('fake-epic-sample-secret');
    expect(printed['Redirect URI']).toBe('http://localhost:3999/fhir/epic-callback');
  });

  it('lets a browser sign in on the consent page and the app exchange the code', async () => {
    const config = (await (
      await fetch(`${printed['FHIR base']}/.well-known/smart-configuration`)
    ).json()) as Record<string, string>;
    const authorize = new URL(config.authorization_endpoint);
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id: printed['Client ID'],
      redirect_uri: printed['Redirect URI'],
      scope: 'openid fhirUser',
      state: 'demo',
    }).toString();
    const page = await (await fetch(authorize)).text();
    const request = /name="request" value="([^"]+)"/.exec(page)![1];
    const user = /name="user" value="([^"]+)"/.exec(page)![1];
    const action = /<form method="post" action="([^"]+)"/.exec(page)![1];
    const decision = await fetch(new URL(action, authorize), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ request, user, decision: 'approve' }).toString(),
      redirect: 'manual',
    });
    const callback = new URL(decision.headers.get('location')!);
    expect(callback.origin + callback.pathname).toBe(printed['Redirect URI']);
    const basic = Buffer.from(`${printed['Client ID']}:${printed['Client secret']}`).toString('base64');
    const token = await fetch(config.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: callback.searchParams.get('code')!,
        redirect_uri: printed['Redirect URI'],
      }).toString(),
    });
    const body = (await token.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ token_type: 'bearer', refresh_token: expect.any(String), state: 'demo' });
  });

  it('offers a browser EHR launch that redirects to the app with iss and launch', async () => {
    const res = await fetch(printed['EHR launch'], { redirect: 'manual' });
    expect(res.status).toBe(302);
    const target = new URL(res.headers.get('location')!);
    expect(target.origin + target.pathname).toBe('http://localhost:3000/fhir/epic-launch');
    expect(target.searchParams.get('iss')).toBe(printed['FHIR base']);
    expect(target.searchParams.get('launch')).toEqual(expect.any(String));
  });
});
