import { randomUUID } from 'node:crypto';

import TestAgent from 'supertest/lib/agent';

import { OrganizationView } from 'src/organizations/dto/organization.view';
import { OrganizationsService } from 'src/organizations/organizations.service';
import { Role } from 'src/users/user.types';
import { UsersService } from 'src/users/users.service';

import { TestApp } from 'test/setup/test-app';
import { testSecret } from './secrets';

export { testSecret } from './secrets';

export interface TestUser {
  id: string;
  email: string;
  password: string;
  role: Role;
  organizationId: string | null;
}

/** Unique data per call, made through the app's own services (nothing mocked, nothing truncated). */
export class TestFactory {
  constructor(private readonly t: TestApp) {}

  async organization(name = `Org ${randomUUID().slice(0, 8)}`): Promise<OrganizationView> {
    return this.t.app.get(OrganizationsService).create(null, { name });
  }

  async user(
    role: Role,
    organizationId: string | null,
    overrides: { password?: string } = {},
  ): Promise<TestUser> {
    const password = overrides.password ?? testSecret();
    const email = `${role}-${randomUUID().slice(0, 8)}@example.org`;
    const { user } = await this.t.app.get(UsersService).create({ email, role, organizationId, password });
    return { id: user.id, email, password, role, organizationId };
  }
}

/** Reads the CSRF token a page carries (the hidden field or the meta tag). */
export function csrfFrom(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html) ?? /name="csrf-token" content="([^"]+)"/.exec(html);
  if (!match) throw new Error('No CSRF token on the page');
  return match[1];
}

/** Signs in through the login form like a browser; returns the agent and a fresh CSRF token. */
export async function signIn(
  t: TestApp,
  user: { email: string; password: string },
): Promise<{ agent: TestAgent; csrf: string }> {
  const agent = t.agent();
  const page = await agent.get('/login').expect(200);
  await agent
    .post('/login')
    .type('form')
    .send({ _csrf: csrfFrom(page.text), email: user.email, password: user.password })
    .expect(303);
  const account = await agent.get('/account/password').expect(200);
  return { agent, csrf: csrfFrom(account.text) };
}
