import TestAgent from 'supertest/lib/agent';

import { Role } from 'src/users/user.types';

import { TestApp } from 'test/setup/test-app';

import { csrfFrom, signIn, TestFactory } from './index';

export type ActorName = 'anonymous' | 'patient' | 'provider' | 'orgAdminA' | 'orgAdminB' | 'rootAdmin';
export const ACTOR_NAMES: ActorName[] = [
  'anonymous',
  'patient',
  'provider',
  'orgAdminA',
  'orgAdminB',
  'rootAdmin',
];

export interface Actor {
  agent: TestAgent;
  csrf: string;
}

/** One signed-in browser per role (patient and provider belong to org A), plus an anonymous one. */
export async function makeActors(
  t: TestApp,
  factory: TestFactory,
  orgA: string,
  orgB: string,
): Promise<Record<ActorName, Actor>> {
  const anonymous = t.agent();
  const page = await anonymous.get('/login');
  const users = {
    patient: await factory.user(Role.Patient, orgA),
    provider: await factory.user(Role.Provider, orgA),
    orgAdminA: await factory.user(Role.OrgAdmin, orgA),
    orgAdminB: await factory.user(Role.OrgAdmin, orgB),
    rootAdmin: await factory.user(Role.RootAdmin, null),
  };
  const signed = await Promise.all(Object.values(users).map((u) => signIn(t, u)));
  const names = Object.keys(users) as Exclude<ActorName, 'anonymous'>[];
  return {
    anonymous: { agent: anonymous, csrf: csrfFrom(page.text) },
    ...(Object.fromEntries(names.map((n, i) => [n, signed[i]])) as Record<
      Exclude<ActorName, 'anonymous'>,
      Actor
    >),
  };
}
