import type { OutboxEntryView } from 'src/connection-health/outbox-admin.service';
import { Role } from 'src/users/user.types';

import { notificationsPage } from './notifications-page';

const failed: OutboxEntryView = {
  id: 'e1',
  channel: 'email',
  status: 'failed',
  recipient: 'admin@example.org',
  organizationId: null,
  organizationName: null,
  attempts: 12,
  lastError: 'the SMTP server answered 451 to RCPT',
  createdAt: '2026-12-01T00:00:00.000Z',
  nextAttemptAt: '2026-12-01T01:00:00.000Z',
};
const viewer = (role: Role) => ({
  user: { id: 'u1', email: 'a@example.org', role, organizationId: null, mustChangePassword: false },
  csrfToken: 'csrf',
});

describe('notificationsPage', () => {
  it('shows root admins the failed deliveries and whether one was just retried', () => {
    expect(notificationsPage(viewer(Role.RootAdmin), [], { failed: [failed], retried: true })).toMatchObject({
      isRoot: true,
      failed: [failed],
      retried: true,
    });
  });

  it('shows an org admin none, whatever it is given', () => {
    expect(notificationsPage(viewer(Role.OrgAdmin), [], { failed: [failed], retried: true })).toMatchObject({
      isRoot: false,
      failed: [],
      retried: false,
    });
    expect(notificationsPage(viewer(Role.OrgAdmin), [])).toMatchObject({ failed: [], retried: false });
  });
});
