import { randomUUID } from 'node:crypto';

import { BadRequestException, Inject, Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { DataSource, EntityManager } from 'typeorm';

import { AuditService } from 'src/audit/audit.service';
import { APP_CONFIG, AppConfig } from 'src/config/app-config';
import { ConnectionEvent, ConnectionEvents, SESSION_FINISHED_CODE } from 'src/connections/connections.events';
import type { StoredCredential } from 'src/connections/connections.types';
import { TokenStoreService } from 'src/connections/token-store.service';
import {
  CONFIRM_LINK_TTL_MS,
  confirmKey,
  signConfirmToken,
  verifyConfirmToken,
} from 'src/mail/confirm-token';
import { MailPreferencesService } from 'src/mail/mail-preferences.service';
import { MailRenderService } from 'src/mail/mail-render.service';
import { MailService } from 'src/mail/mail.service';
import { EpicClientChangedEvent, OrganizationEvents } from 'src/organizations/organizations.events';
import { serverLabel } from 'src/organizations/organization.types';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { ContactEmail, Role } from 'src/users/user.types';
import { AuthUser } from 'src/users/user.view';
import { UsersService } from 'src/users/users.service';

import { EmailOutboxService } from './email-outbox.service';
import { SESSION_FINISHED_REASON } from './user-connection-endings';

/** How far back a registration change looks for the user connections it ended (they end in its transaction). */
const REGISTRATION_LOOKBACK_MS = 3600_000;
/** How many notices a page shows at most (one per organization). */
const PAGE_LIMIT = 20;

/** A user's own connection that ended and that they have not connected again: shown on their page. */
export interface OwnConnectionNotice {
  id: string;
  organizationId: string;
  organizationName: string;
  endedAt: string;
  /** What the organization's server is called ("Epic", the administrator's name, "the EHR"): providers launch again from it. */
  serverName: string;
  /** Patients: the organization's standalone launch ("Connect again"); providers: null (launch from the EHR). */
  reconnectUrl: string | null;
}

/** The email part of a user's page: their address, where it came from, and whether they want the email. */
export interface OwnConnectionContact {
  address: string | null;
  source: ContactEmail['source'];
  /** Whether the address may be emailed: false while an entered one waits for its confirmation link. */
  confirmed: boolean;
  /** `immediate` (the default) or `off`. */
  mode: 'immediate' | 'off';
  /** Whether this service sends email at all (SMTP configured). */
  mailConfigured: boolean;
}

/** What the page's form posted: the address (absent keeps it, blank clears it) and the choice. */
export interface OwnConnectionContactInput {
  contactEmail?: unknown;
  ownConnection?: unknown;
}

export type ContactSaveOutcome =
  { ok: true } | { ok: false; error: string; field: 'contactEmail' | 'ownConnection' };

/**
 * Providers' and patients' own connections that ended (src/connection-health/README.md, "Users' own
 * connections"). Each ending (a user credential and its `ended_at`) is recorded once in
 * `user_connection_notice`, from:
 *
 * - `connection.lost` about a user's credential: the server refused the refresh (revoked, refresh
 *   token expired…), and Connections ended the credential;
 * - `organizations.epic-client-changed`: the registration changed and every user connection of the
 *   organization ended with it, in the change's transaction.
 *
 * The notice shows on the user's page until they connect again in that organization (or remove the
 * ended account), and, when email is configured and they have a contact address and did not turn
 * the `own-connection` channel off, it is emailed once through the outbox (EmailOutboxService).
 */
@Injectable()
export class OwnConnectionNoticesService {
  private readonly logger = new Logger(OwnConnectionNoticesService.name);
  private readonly confirmKeys: Buffer[];

  constructor(
    private readonly dataSource: DataSource,
    private readonly tokens: TokenStoreService,
    private readonly users: UsersService,
    private readonly organizations: OrganizationsService,
    private readonly mail: MailService,
    private readonly preferences: MailPreferencesService,
    private readonly emailOutbox: EmailOutboxService,
    private readonly audit: AuditService,
    private readonly render: MailRenderService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.confirmKeys = config.sessionSecrets.map(confirmKey);
  }

  @OnEvent(ConnectionEvents.Lost)
  async onLost(event: ConnectionEvent): Promise<void> {
    // A session that could never be renewed reached its end: nothing was lost, nobody is told.
    if (!event.userId || !event.credentialId || event.code === SESSION_FINISHED_CODE) return;
    try {
      const credential = await this.tokens.findById(event.credentialId);
      if (credential) await this.record([credential]);
    } catch (error) {
      this.logger.error(
        { err: error, credentialId: event.credentialId },
        'Could not record an ended user connection',
      );
    }
  }

  @OnEvent(OrganizationEvents.EpicClientChanged)
  async onRegistrationChanged(event: EpicClientChangedEvent): Promise<void> {
    // Listeners of this event run inside the registration request (emitAsync): never throw back.
    try {
      const since = Date.now() - REGISTRATION_LOOKBACK_MS;
      const ended: StoredCredential[] = [];
      for (const user of await this.users.listLaunchUsers(event.organizationId)) {
        for (const credential of await this.tokens.listUserCredentials(user.id)) {
          if (
            credential.organizationId === event.organizationId &&
            credential.endedAt &&
            credential.endedAt.getTime() >= since
          ) {
            ended.push(credential);
          }
        }
      }
      await this.record(ended);
    } catch (error) {
      this.logger.error(
        { err: error, orgId: event.organizationId },
        'Could not record the user connections a registration change ended',
      );
    }
  }

  /**
   * Records each ended user credential once (unique on the credential and its end), marked for
   * email when email is configured, and starts a delivery run (detached) when one was new.
   */
  async record(credentials: StoredCredential[]): Promise<number> {
    const ended = credentials.filter(
      (c): c is StoredCredential & { userId: string; endedAt: Date } =>
        // A finished session (never renewable, reached its end) is no lost connection: no notice.
        c.userId !== null && c.endedAt !== null && c.lastError !== SESSION_FINISHED_REASON,
    );
    if (ended.length === 0) return 0;
    const mailed = this.mail.configured;
    const rows = await this.dataSource.query<{ id: string }[]>(
      `INSERT INTO user_connection_notice
              (user_id, organization_id, credential_id, ended_at, reason, mail_pending, mail_due_at)
       SELECT u, o, c, e, r, $6, CASE WHEN $6 THEN now() END
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::text[]) AS t(u, o, c, e, r)
       ON CONFLICT (credential_id, ended_at) DO NOTHING
       RETURNING id`,
      [
        ended.map((c) => c.userId),
        ended.map((c) => c.organizationId),
        ended.map((c) => c.id),
        ended.map((c) => c.endedAt),
        ended.map((c) => c.lastError),
        mailed,
      ],
    );
    if (rows.length > 0) {
      this.logger.log({ notices: rows.length }, 'Recorded ended user connections');
      if (mailed) void this.emailOutbox.deliverDue();
    }
    return rows.length;
  }

  /**
   * The user's ended connections they have not connected again: the newest per organization whose
   * ended credential still exists (removing the ended account dismisses it) and has no newer live
   * credential in that organization.
   */
  async openNotices(user: AuthUser): Promise<OwnConnectionNotice[]> {
    const rows = await this.dataSource.query<
      { id: string; organization_id: string; credential_id: string; ended_at: Date }[]
    >(
      `SELECT id, organization_id, credential_id, ended_at FROM user_connection_notice
        WHERE user_id = $1 ORDER BY ended_at DESC LIMIT ${PAGE_LIMIT * 5}`,
      [user.id],
    );
    if (rows.length === 0) return [];
    const credentials = await this.tokens.listUserCredentials(user.id);
    const open = new Map<string, (typeof rows)[number]>();
    for (const row of rows) {
      if (open.has(row.organization_id)) continue;
      const endedAt = new Date(row.ended_at).getTime();
      // Still this ending: the credential is there and ended then (a reconnect may reuse the row).
      const stillEnded = credentials.some(
        (c) => c.id === row.credential_id && c.endedAt?.getTime() === endedAt,
      );
      const reconnected = credentials.some(
        (c) => c.organizationId === row.organization_id && c.endedAt === null,
      );
      if (stillEnded && !reconnected) open.set(row.organization_id, row);
      if (open.size >= PAGE_LIMIT) break;
    }
    if (open.size === 0) return [];
    const notices: OwnConnectionNotice[] = [];
    for (const row of open.values()) {
      const org = await this.organizations.get(row.organization_id).catch(() => null);
      if (!org) continue;
      notices.push({
        id: row.id,
        organizationId: row.organization_id,
        organizationName: org.name,
        endedAt: new Date(row.ended_at).toISOString(),
        serverName: serverLabel(org).name,
        reconnectUrl: user.role === Role.Patient ? reconnectPath(org.slug) : null,
      });
    }
    return notices;
  }

  /** The user's contact address and email choice, for their page's form. */
  async contact(user: AuthUser): Promise<OwnConnectionContact> {
    const [contact, mode] = await Promise.all([
      this.users.contactEmailOf(user.id),
      this.preferences.modeOf(user.id, 'own-connection'),
    ]);
    return {
      address: contact.address,
      source: contact.source,
      confirmed: contact.confirmed,
      mode: mode === 'off' ? 'off' : 'immediate',
      mailConfigured: this.mail.configured,
    };
  }

  /**
   * Saves the page's form: the address (checked; an empty string clears it, an absent field keeps
   * it) and the choice (`immediate` or `off`), in one transaction. A new address is not used until
   * confirmed (double opt-in): the same transaction queues a confirmation email to it with a sealed
   * one-time link (at most MAIL_HOURLY_CAP emails to the user an hour). Bad input changes nothing
   * and says what is wrong.
   */
  async saveContact(user: AuthUser, input: OwnConnectionContactInput): Promise<ContactSaveOutcome> {
    const mode = input.ownConnection ?? 'immediate';
    if (mode !== 'immediate' && mode !== 'off') {
      return {
        ok: false,
        field: 'ownConnection',
        error: 'Choose whether to get this email: "immediate" or "off".',
      };
    }
    if (input.contactEmail !== undefined && typeof input.contactEmail !== 'string') {
      return { ok: false, field: 'contactEmail', error: 'Enter one email address, or leave it blank.' };
    }
    // Absent (a form or client that does not send it): the address stays as it is.
    const entered = typeof input.contactEmail === 'string' ? input.contactEmail : undefined;
    let queued = false;
    try {
      await this.dataSource.transaction(async (manager) => {
        if (entered !== undefined) {
          const stored = await this.users.setContactEmail(user.id, entered, manager);
          // Asked for only when they want the email (saving it again with `immediate` asks again).
          if (stored.needsConfirmation && stored.address && mode === 'immediate' && this.mail.configured) {
            queued = await this.queueConfirmation(manager, user, stored.address);
          }
        }
        await this.preferences.set(user.id, 'own-connection', mode, manager);
      });
    } catch (error) {
      // The address check's sentence (UsersService); anything else is not the user's doing.
      if (!(error instanceof BadRequestException)) throw error;
      return { ok: false, field: 'contactEmail', error: error.message };
    }
    await this.audit.record({
      actor: user,
      action: 'mail.contact-changed',
      // Not the address itself: whether there is one, and the choice.
      detail: {
        channel: 'own-connection',
        mode,
        address: entered === undefined ? 'unchanged' : entered.trim() ? 'set' : 'cleared',
      },
    });
    if (queued) void this.emailOutbox.deliverDue();
    return { ok: true };
  }

  /**
   * The confirmation email for an entered address, as a pending outbox row (sent like the others).
   * None over MAIL_HOURLY_CAP emails to this user in the last hour: entering address after address
   * must not make this service mail third parties; the page keeps saying "waiting for confirmation".
   */
  private async queueConfirmation(manager: EntityManager, user: AuthUser, address: string): Promise<boolean> {
    const now = new Date();
    const [{ sent }] = await manager.query<{ sent: number }[]>(
      `SELECT count(*)::int AS sent FROM notification_outbox
        WHERE recipient_user_id = $1 AND channel = 'email' AND created_at > $2`,
      [user.id, new Date(now.getTime() - 3600_000)],
    );
    if (sent >= this.config.env.MAIL_HOURLY_CAP) {
      this.logger.warn({ userId: user.id }, 'Hourly email cap reached: no confirmation email sent');
      return false;
    }
    const base = this.config.publicBaseUrl;
    const token = signConfirmToken(
      user.id,
      address,
      new Date(now.getTime() + CONFIRM_LINK_TTL_MS),
      this.confirmKeys[0],
    );
    const outboxId = randomUUID();
    const body = this.render.render('confirm-address', {
      product: 'epic-connect',
      baseUrl: base,
      confirmUrl: `${base}/mail/confirm?t=${encodeURIComponent(token)}`,
    });
    const mail = this.mail.message(outboxId, {
      to: address,
      subject: 'Confirm your email address for epic-connect',
      body,
    });
    await manager.query(
      `INSERT INTO notification_outbox
              (id, notification_id, recipient_user_id, channel, payload, status, next_attempt_at, created_at)
       VALUES ($1, NULL, $2, 'email', $3::jsonb, 'pending', $4, $4)`,
      [outboxId, user.id, JSON.stringify(mail), now],
    );
    return true;
  }

  /** What a confirmation link can do now (for its page): null when it is not one of ours. */
  async inspectConfirmation(token: unknown): Promise<'valid' | 'already' | 'stale' | 'expired' | null> {
    const claims = verifyConfirmToken(token, this.confirmKeys);
    if (!claims) return null;
    if (claims.expiresAt.getTime() < Date.now()) return 'expired';
    const contact = await this.users.contactEmailOf(claims.userId);
    if (!contact.address || !claims.isFor(contact.address)) return 'stale';
    return contact.confirmed ? 'already' : 'valid';
  }

  /** Uses a confirmation link: the address is confirmed if it is still the user's and the link is in time. */
  async confirmContact(token: unknown): Promise<'confirmed' | 'already' | 'stale' | 'expired' | null> {
    const claims = verifyConfirmToken(token, this.confirmKeys);
    if (!claims) return null;
    if (claims.expiresAt.getTime() < Date.now()) return 'expired';
    const outcome = await this.users.confirmContactEmail(claims.userId, claims.isFor);
    if (outcome === 'confirmed') this.logger.log({ userId: claims.userId }, 'Contact address confirmed');
    return outcome;
  }
}

/** The organization's patient standalone launch (src/epic-auth: `GET /fhir/epic-connect?org=`). */
export const reconnectPath = (slug: string): string => `/fhir/epic-connect?org=${encodeURIComponent(slug)}`;
