import { ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Role } from 'src/users/user.types';

import { csrfFrom, signIn, TestFactory } from 'test/factories';
import { createTestApp, TestApp } from 'test/setup/test-app';

const MAIN = join(__dirname, '..', '..', '..', 'dist', 'src', 'main.js');
const CLI = join(__dirname, '..', '..', '..', 'dist', 'src', 'cli.js');

describe('the app on the embedded database (PGlite over the wire protocol)', () => {
  let t: TestApp;

  beforeAll(async () => {
    // The PGlite server started by globalSetup, outside Jest's VM; migrations run at boot as in `npm start`.
    t = await createTestApp({
      databaseUrl: process.env.TEST_PGLITE_URL!,
      env: { MIGRATIONS_RUN: 'true', DATABASE_POOL_SIZE: '1' },
    });
  });
  afterAll(() => t.close());

  it('migrates, signs in, writes in a transaction with an audit event, and answers ready', async () => {
    const factory = new TestFactory(t);
    const root = await signIn(t, await factory.user(Role.RootAdmin, null));
    const org = await root.agent
      .post('/api/organizations')
      .set('x-csrf-token', root.csrf)
      .send({ name: 'Embedded' });
    expect(org.status).toBe(201);
    await root.agent.delete(`/api/organizations/${org.body.id}`).set('x-csrf-token', root.csrf).expect(204);
    const events = await root.agent.get('/api/audit-events').expect(200);
    expect(events.body[0]).toMatchObject({ action: 'organization.deleted' });
    await t.http().get('/health/ready').expect(200);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function start(dataDir: string, port: number): Started {
  // A clean environment: no DATABASE_URL, no keys. This is what `npm start` runs after building.
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATA_DIR: dataDir,
      PORT: String(port),
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function waitReady(port: number, started: Started, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (started.child.exitCode !== null) throw new Error(`exited early:\n${started.output()}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`not ready in time:\n${started.output()}`);
}

/** The operator CLI on the same data directory, as `npm run cli` runs it. */
function runCli(dataDir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH, HOME: process.env.HOME, DATA_DIR: dataDir, NODE_ENV: 'test' } },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function stop(started: Started): Promise<void> {
  started.child.kill('SIGTERM');
  await started.exited;
}

describe('`npm start` with no DATABASE_URL (dist/src/main.js in a temporary DATA_DIR)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ec-embedded-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('boots, keeps its data across a restart, and refuses a second process on the same directory', async () => {
    expect(existsSync(MAIN)).toBe(true); // built by `pretest`
    const port = await freePort();
    const first = start(dataDir, port);
    await waitReady(port, first);
    const password = /password: (\S+)/.exec(first.output())?.[1];
    expect(password).toBeDefined(); // printed once, on the first start

    const second = start(dataDir, await freePort());
    expect(await second.exited).not.toBe(0);
    expect(second.output()).toContain('is in use by another epic-connect process');

    // The operator CLI while the service runs (checked once the service is stopped).
    const cli = await runCli(dataDir, ['reset-password', '--email', 'admin@localhost']);
    await stop(first);
    // One clear line, no stack trace.
    expect(cli).toEqual({
      code: 1,
      stdout: '',
      stderr: `error: the embedded database in ${dataDir} is in use by the running service (pid ${first.child.pid}). Stop the service first: the embedded database serves one process at a time.\n`,
    });
    expect(existsSync(join(dataDir, 'epic-connect.lock'))).toBe(false);

    const again = start(dataDir, port);
    await waitReady(port, again);
    try {
      expect(again.output()).not.toContain('First start');
      const page = await fetch(`http://127.0.0.1:${port}/login`);
      const cookie = page.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ');
      const login = await fetch(`http://127.0.0.1:${port}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: new URLSearchParams({
          _csrf: csrfFrom(await page.text()),
          email: 'admin@localhost',
          password: password!,
        }),
      });
      expect(login.status).toBe(303);
      expect(login.headers.get('location')).toBe('/account/password'); // the generated password must be changed
    } finally {
      await stop(again);
    }
  }, 120_000);
});
