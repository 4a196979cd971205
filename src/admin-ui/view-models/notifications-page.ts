import type { NotificationView } from 'src/connection-health/notifications.service';
import type { OutboxEntryView } from 'src/connection-health/outbox-admin.service';
import { Role } from 'src/users/user.types';

import type { Viewer } from './page';

/** `GET /admin/notifications`: the viewer's latest notifications, newest first. */
export interface NotificationsPage extends Viewer {
  title: string;
  items: NotificationView[];
  /** A root admin sees every organization's: each item names and links its organization. */
  isRoot: boolean;
  /** Root admins: deliveries parked after their last attempt (dead letters), newest first. */
  failed: OutboxEntryView[];
  /** A Retry was just done. */
  retried: boolean;
}

export function notificationsPage(
  viewer: Viewer,
  items: NotificationView[],
  outbox: { failed: OutboxEntryView[]; retried?: boolean } = { failed: [] },
): NotificationsPage {
  const isRoot = viewer.user.role === Role.RootAdmin;
  return {
    title: 'Notifications',
    ...viewer,
    items,
    isRoot,
    failed: isRoot ? outbox.failed : [],
    retried: isRoot && outbox.retried === true,
  };
}
