import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { Client } from 'pg';

import { freshDatabaseUrl } from 'test/setup/database';

async function withDatabase<T>(url: string, work: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const CLI = join(__dirname, '..', '..', '..', 'dist', 'src', 'cli.js');
const run = promisify(execFile);

describe('operator CLI (dist/src/cli.js, as `npm run cli` runs it)', () => {
  it('creates a user with a one-time password, resets it, and explains bad input', async () => {
    const env = {
      PATH: process.env.PATH,
      NODE_ENV: 'test',
      DATABASE_URL: await freshDatabaseUrl(),
      ENCRYPTION_KEYS: process.env.ENCRYPTION_KEYS,
      SESSION_SECRET: process.env.SESSION_SECRET,
    };
    const created = await run(
      process.execPath,
      [CLI, 'create-user', '--email', 'ops@example.org', '--role', 'root_admin'],
      { env },
    );
    expect(created.stdout).toMatch(/Created root_admin ops@example.org/);
    const first = /password[^:]*: (\S+)/.exec(created.stdout)?.[1];
    expect(first).toBeDefined();
    const reset = await run(process.execPath, [CLI, 'reset-password', '--email', 'OPS@example.org'], { env });
    const second = /password[^:]*: (\S+)/.exec(reset.stdout)?.[1];
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    const audit = await withDatabase(env.DATABASE_URL, (c) =>
      c.query<{ action: string }>(
        `SELECT action FROM audit_event WHERE detail->>'via' = 'cli' ORDER BY occurred_at`,
      ),
    );
    expect(audit.rows.map((r) => r.action)).toEqual(['user.created', 'user.password-reset']);
    await expect(
      run(
        process.execPath,
        [CLI, 'create-user', '--email', 'x@example.org', '--role', 'org_admin', '--org', 'missing'],
        { env },
      ),
    ).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('No organization with the slug "missing"'),
    });
  }, 60_000);
});
