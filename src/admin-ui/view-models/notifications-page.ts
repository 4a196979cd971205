import type { NotificationView } from 'src/connection-health/notifications.service';
import { Role } from 'src/users/user.types';

import type { Viewer } from './page';

/** `GET /admin/notifications`: the viewer's latest notifications, newest first. */
export interface NotificationsPage extends Viewer {
  title: string;
  items: NotificationView[];
  /** A root admin sees every organization's: each item names and links its organization. */
  isRoot: boolean;
}

export function notificationsPage(viewer: Viewer, items: NotificationView[]): NotificationsPage {
  return { title: 'Notifications', ...viewer, items, isRoot: viewer.user.role === Role.RootAdmin };
}
