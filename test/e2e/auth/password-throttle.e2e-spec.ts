import { Role } from 'src/users/user.types';

import { signIn, TestFactory, testSecret } from 'test/factories';
import { createTestApp, TestApp } from 'test/setup/test-app';

/**
 * The current-password check of a password change is throttled like sign-in (per client IP, in
 * PostgreSQL); its 429 carries Retry-After (RFC 6585 §4). Its own file: passport's session
 * serializer is process-wide, so a sign-in needs the file's only app.
 */
describe('password change throttling', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ env: { LOGIN_THROTTLE_LIMIT: '3', LOGIN_THROTTLE_WINDOW_SECONDS: '60' } });
  });
  afterAll(() => t.close());

  it('answers the attempt over the limit with 429 and Retry-After, so the current password is no oracle', async () => {
    const org = await new TestFactory(t).organization();
    const admin = await new TestFactory(t).user(Role.OrgAdmin, org.id);
    const { agent, csrf } = await signIn(t, admin);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await agent
        .post('/account/password')
        .type('form')
        .send({
          _csrf: csrf,
          currentPassword: testSecret('wrong'),
          newPassword: testSecret('new'),
          confirmPassword: testSecret('other'),
        });
      statuses.push(res.status);
      if (res.status === 429) expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
    expect(statuses).toEqual([400, 400, 400, 429]);
  });
});
