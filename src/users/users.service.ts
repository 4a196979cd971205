import {
  BadRequestException,
  ConflictException,
  Injectable,
  Logger,
  NotFoundException,
  OnModuleInit,
} from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, In, IsNull, Not, QueryFailedError, Repository } from 'typeorm';

import { checkContactEmail, PLACEHOLDER_EMAIL } from './contact-email';
import { LoginLockout } from './login-lockout';
import { dummyHash, generatePassword, hashPassword, verifyPassword } from './password-hasher';
import { Role, User } from './user.entity';
import { ContactEmail } from './user.types';
import { AuthUser, toAuthUser, toUserView, UserView } from './user.view';

export interface CreateUserInput {
  email: string;
  role: Role;
  organizationId: string | null;
  /** Omit to generate one; it is returned once and must be changed at first login. */
  password?: string;
}

export type CredentialCheck =
  { ok: true; user: AuthUser } | { ok: false; reason: 'invalid' | 'locked' | 'disabled'; userId?: string };

/** Users, their passwords and sign-in rules (lockout after repeated failures: LoginLockout). */
@Injectable()
export class UsersService implements OnModuleInit {
  private readonly logger = new Logger(UsersService.name);

  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    private readonly lockout: LoginLockout,
  ) {}

  /** Computes the stand-in hash now, so the first unknown email does not cost two hashes. */
  async onModuleInit(): Promise<void> {
    await dummyHash();
  }

  async create(input: CreateUserInput): Promise<{ user: UserView; generatedPassword?: string }> {
    const email = input.email.trim();
    if ((input.role === Role.RootAdmin) !== (input.organizationId === null)) {
      throw new ConflictException('A root admin has no organization; every other role has exactly one');
    }
    if (await this.findEntityByEmail(email)) {
      throw new ConflictException('A user with this email already exists');
    }
    const generatedPassword = input.password === undefined ? generatePassword() : undefined;
    let user: User;
    try {
      user = await this.users.save(
        this.users.create({
          email,
          role: input.role,
          organizationId: input.organizationId,
          passwordHash: await hashPassword(input.password ?? generatedPassword!),
          mustChangePassword: generatedPassword !== undefined,
        }),
      );
    } catch (e) {
      // Two requests for the same email at once: the unique index decides.
      if (e instanceof QueryFailedError && (e.driverError as { code?: string }).code === '23505') {
        throw new ConflictException('A user with this email already exists');
      }
      throw e;
    }
    return { user: toUserView(user), generatedPassword };
  }

  /**
   * The provider or patient user that a verified id_token's `fhirUser` identifies in one organization,
   * created at the first launch (no password: they sign in through Epic only). Inside the caller's
   * transaction; two first launches at once resolve to one user through the unique index.
   */
  async findOrCreateLaunchUser(
    manager: EntityManager,
    organizationId: string,
    role: Role.Provider | Role.Patient,
    fhirUser: string,
  ): Promise<AuthUser> {
    const email = `${fhirUser.toLowerCase().replace(/[^a-z0-9]+/g, '.')}.${organizationId.slice(0, 8)}@launch.invalid`;
    await manager.query(
      `INSERT INTO app_user (email, role, organization_id, fhir_user, password_hash, must_change_password)
       VALUES ($1, $2, $3, $4, NULL, false)
       ON CONFLICT DO NOTHING`,
      [email, role, organizationId, fhirUser],
    );
    const user = await manager.findOneBy(User, { organizationId, fhirUser });
    if (!user || user.role !== role || user.disabled) {
      throw new ConflictException(
        'This Epic user cannot sign in here (disabled, or known with another role).',
      );
    }
    return toAuthUser(user);
  }

  /**
   * A signed-in patient links an Epic account: their fhirUser is set the first time, and must match
   * afterwards (one account per patient user). Inside the caller's transaction.
   */
  async linkLaunchUser(
    manager: EntityManager,
    userId: string,
    organizationId: string,
    fhirUser: string,
  ): Promise<AuthUser> {
    const user = await manager.findOneBy(User, { id: userId, organizationId, role: Role.Patient });
    if (!user || user.disabled) throw new ConflictException('This account can no longer be linked.');
    if (user.fhirUser && user.fhirUser !== fhirUser) {
      throw new ConflictException('This account is linked to another Epic patient record.');
    }
    if (!user.fhirUser) await manager.update(User, { id: user.id }, { fhirUser });
    return toAuthUser(user);
  }

  async findAuthUser(id: string): Promise<AuthUser | null> {
    const user = await this.users.findOneBy({ id });
    return user && !user.disabled ? toAuthUser(user) : null;
  }

  /** A user's email (audit labels), or null when there is no such user. */
  async emailOf(id: string): Promise<string | null> {
    const user = await this.users.findOne({ where: { id }, select: { id: true, email: true } });
    return user?.email ?? null;
  }

  async getView(id: string): Promise<UserView> {
    const user = await this.users.findOneBy({ id });
    if (!user) throw new NotFoundException('User not found');
    return toUserView(user);
  }

  async findByEmail(email: string): Promise<UserView | null> {
    const user = await this.findEntityByEmail(email);
    return user ? toUserView(user) : null;
  }

  /** The organization's administrators (not the providers and patients its launches signed in). */
  async listOrgAdmins(organizationId: string): Promise<UserView[]> {
    const users = await this.users.find({
      where: { organizationId, role: Role.OrgAdmin },
      order: { email: 'ASC' },
    });
    return users.map(toUserView);
  }

  /** The providers and patients of an organization (its launches' users), enabled or not. */
  async listLaunchUsers(organizationId: string): Promise<UserView[]> {
    const users = await this.users.find({
      where: { organizationId, role: In([Role.Provider, Role.Patient]) },
      order: { createdAt: 'ASC' },
    });
    return users.map(toUserView);
  }

  /** These users (unknown ids are left out): e.g. the recipients of queued emails. */
  async findViews(ids: string[]): Promise<UserView[]> {
    if (ids.length === 0) return [];
    return (await this.users.findBy({ id: In(ids) })).map(toUserView);
  }

  async listRootAdmins(): Promise<UserView[]> {
    const users = await this.users.find({ where: { organizationId: IsNull() }, order: { email: 'ASC' } });
    return users.map(toUserView);
  }

  /**
   * Checks an email and password from a client address. Every attempt costs one password hash
   * (an unknown email is checked against a stand-in hash) and the same counting, so neither the
   * answer nor its timing tells whether an account exists. Failures are counted per email and
   * client address, and per email from everywhere (LoginLockout, in PostgreSQL: shared by every
   * instance); while either is locked even the right password is refused. Either way one query
   * after the hash: a failure is counted (and the lock read) in one statement, and only a matching
   * password asks whether a lock is in force.
   */
  async checkCredentials(
    email: string,
    password: string,
    clientIp: string | undefined,
    now = new Date(),
  ): Promise<CredentialCheck> {
    const keys = this.lockout.keys(email, clientIp);
    const user = await this.findEntityByEmail(email);
    const account = user?.passwordHash ? user : null; // launch users have no password: unknown here
    const matches = await verifyPassword(password, account?.passwordHash ?? (await dummyHash()));
    const userId = account?.id;
    if (!account || !matches) {
      // One statement: counts the failure unless a lock is in force, and says whether one is.
      const outcome = await this.lockout.recordFailure(keys);
      if (outcome === 'locks') this.logger.warn({ userId }, 'Sign-in locked after repeated failed logins');
      return { ok: false, reason: outcome === 'counted' ? 'invalid' : 'locked', userId };
    }
    // The right password during a lock: refused alike, after one statement too (not counted).
    if (await this.lockout.isLocked(keys)) return { ok: false, reason: 'locked', userId };
    if (account.disabled) return { ok: false, reason: 'disabled', userId };
    await this.lockout.clearClient(keys);
    await this.users.update(account.id, { lastLoginAt: now });
    return { ok: true, user: toAuthUser(account) };
  }

  /** Sets a new password; `mustChange` forces another change at next login (resets by operators). */
  async setPassword(userId: string, password: string, mustChange = false): Promise<void> {
    const result = await this.users
      .createQueryBuilder()
      .update()
      .set({ passwordHash: await hashPassword(password), mustChangePassword: mustChange })
      .where({ id: userId })
      .returning(['email'])
      .execute();
    const [user] = result.raw as { email: string }[];
    if (!result.affected || !user) throw new NotFoundException('User not found');
    await this.lockout.clearAccount(user.email);
  }

  async verifyPassword(userId: string, password: string): Promise<boolean> {
    const user = await this.users.findOneBy({ id: userId });
    return !!user?.passwordHash && (await verifyPassword(password, user.passwordHash));
  }

  /** Deletes the user's server-side sessions except `keepSessionId` (after a password change). */
  async endOtherSessions(userId: string, keepSessionId: string): Promise<void> {
    await this.users.query(
      `DELETE FROM user_session WHERE sid <> $1 AND (sess::jsonb -> 'passport' ->> 'user') = $2`,
      [keepSessionId, userId],
    );
  }

  async setDisabled(userId: string, disabled: boolean): Promise<void> {
    const result = await this.users.update(userId, { disabled });
    if (!result.affected) throw new NotFoundException('User not found');
  }

  /**
   * Providers' and patients' contact addresses for email about their own connections (users
   * without one, or unknown, are left out). Never the `…@launch.invalid` placeholder.
   */
  async contactEmails(ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    // Only confirmed addresses (double opt-in): an entered one waits for its link to be opened.
    const rows = await this.users.find({
      select: { id: true, contactEmail: true },
      where: { id: In(ids), contactEmailConfirmedAt: Not(IsNull()) },
    });
    return new Map(
      rows.flatMap((u) =>
        u.contactEmail && !PLACEHOLDER_EMAIL.test(u.contactEmail) ? [[u.id, u.contactEmail] as const] : [],
      ),
    );
  }

  /** A user's contact address and where it came from. */
  async contactEmailOf(id: string): Promise<ContactEmail> {
    const user = await this.users.findOne({
      select: { id: true, contactEmail: true, contactEmailSource: true, contactEmailConfirmedAt: true },
      where: { id },
    });
    return {
      address: user?.contactEmail ?? null,
      source: user?.contactEmailSource ?? null,
      confirmed: !!user?.contactEmail && !!user.contactEmailConfirmedAt,
    };
  }

  /**
   * The user entered (or cleared, with null) their contact address on their page: it is kept over
   * any later launch's claim. Checked with `checkContactEmail` first (the caller shows the error).
   * A new address is unconfirmed (not emailed) until `confirmContactEmail`; the same address again
   * keeps its confirmation. Returns the address stored and whether it needs confirming. With
   * `manager`, inside the caller's transaction.
   */
  async setContactEmail(
    id: string,
    address: string | null,
    manager?: EntityManager,
  ): Promise<{ address: string | null; needsConfirmation: boolean }> {
    const checked = checkContactEmail(address);
    if (!checked.ok) throw new BadRequestException(checked.error);
    const m = manager ?? this.users.manager;
    const current = await m.findOne(User, {
      select: { id: true, contactEmail: true, contactEmailConfirmedAt: true },
      where: { id },
    });
    const same =
      checked.address !== null &&
      current?.contactEmail?.toLowerCase() === checked.address.toLowerCase() &&
      current.contactEmailConfirmedAt !== null;
    await m.update(
      User,
      { id },
      {
        contactEmail: checked.address,
        contactEmailSource: 'entered',
        contactEmailConfirmedAt: same ? current.contactEmailConfirmedAt : null,
      },
    );
    return { address: checked.address, needsConfirmation: checked.address !== null && !same };
  }

  /**
   * The link emailed to an entered address was opened: confirms it if it is still the user's address
   * (compared by `matches`, e.g. a hash the link carries). `confirmed`, `already` (confirmed before)
   * or `stale` (the address changed, or the user is gone).
   */
  async confirmContactEmail(
    id: string,
    matches: (address: string) => boolean,
  ): Promise<'confirmed' | 'already' | 'stale'> {
    return this.users.manager.transaction(async (m) => {
      const user = await m.findOne(User, {
        select: { id: true, contactEmail: true, contactEmailConfirmedAt: true },
        where: { id },
        lock: { mode: 'pessimistic_write' },
      });
      if (!user?.contactEmail || !matches(user.contactEmail)) return 'stale';
      if (user.contactEmailConfirmedAt) return 'already';
      await m.update(User, { id }, { contactEmailConfirmedAt: new Date() });
      return 'confirmed';
    });
  }

  /**
   * At a launch, inside its transaction: the verified id_token's `email` claim becomes the user's
   * contact address, unless they entered (or cleared) one themselves.
   */
  async recordClaimedEmail(manager: EntityManager, id: string, address: string): Promise<void> {
    const checked = checkContactEmail(address);
    if (!checked.ok || !checked.address) return;
    await manager
      .createQueryBuilder()
      .update(User)
      // A verified id_token's address needs no confirmation.
      .set({
        contactEmail: checked.address,
        contactEmailSource: 'id_token',
        contactEmailConfirmedAt: () => 'now()',
      })
      .where(`id = :id AND (contact_email_source IS NULL OR contact_email_source = 'id_token')`, { id })
      .execute();
  }

  async count(): Promise<number> {
    return this.users.count();
  }

  private findEntityByEmail(email: string): Promise<User | null> {
    return this.users
      .createQueryBuilder('u')
      .where('lower(u.email) = lower(:email)', { email: email.trim() })
      .getOne();
  }
}
