import { EmailOutboxService } from 'src/connection-health/email-outbox.service';
import { ScheduledCheckService } from 'src/connection-health/scheduled-check.service';
import { Role } from 'src/users/user.types';

import { signIn, TestFactory } from 'test/factories';
import { connectedOrganization, setStoredExpiry } from 'test/factories/epic-connection';
import { FakeEpic, startFakeEpic } from 'test/fakes/epic';
import { createTestApp, TestApp } from 'test/setup/test-app';

describe('without SMTP configured', () => {
  let t: TestApp;
  let epic: FakeEpic;
  beforeAll(async () => {
    epic = await startFakeEpic();
    t = await createTestApp();
  });
  afterAll(async () => {
    await t.close();
    await epic.close();
  });

  it('has no mail indicator in /health', async () => {
    const health = await t.http().get('/health').expect(200);
    expect((health.body as { details: Record<string, unknown> }).details.mail).toBeUndefined();
  });

  it('queues no email for a connection change: the notice is not marked for email, no email row', async () => {
    const { orgId } = await connectedOrganization(t, epic);
    await setStoredExpiry(t, orgId, -60_000);
    epic.rejectRefresh(1);
    await t.app.get(ScheduledCheckService).tick(new Date());
    const notices = await t.dataSource.query<{ mail_pending: boolean }[]>(
      `SELECT mail_pending FROM notification WHERE organization_id = $1`,
      [orgId],
    );
    expect(notices).toEqual([{ mail_pending: false }]);
    await t.app.get(EmailOutboxService).deliverDue(new Date(Date.now() + 86_400_000));
    expect(await t.dataSource.query(`SELECT id FROM notification_outbox WHERE channel = 'email'`)).toEqual(
      [],
    );
    expect(await t.dataSource.query(`SELECT 1 FROM notification_recipient`)).toEqual([]);
  });

  it('still shows the email choices on an admin account page, saying email is off', async () => {
    const org = await new TestFactory(t).organization();
    const admin = await signIn(t, await new TestFactory(t).user(Role.OrgAdmin, org.id));
    const page = await admin.agent.get('/account').expect(200);
    expect(page.text).toContain('This server does not send email yet');
  });
});
