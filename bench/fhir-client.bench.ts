// Benchmarks: `npm run bench` (npx tsx bench/fhir-client.bench.ts) runs every section of SECTIONS in
// turn (FhirClient, connection check, admin console, gateway throttle, gateway).
// `npm run bench -- connection-check` (or any other section's name) runs one.
// See bench/README.md.
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import type { Options } from '@swc/core';

const ROOT = resolve(__dirname, '..');

/** The sections, in the order they run; each is a `main()` in its own child process. */
const SECTIONS = {
  'fhir-client': 'fhir-client.main.ts',
  'connection-check': 'connection-check.main.ts',
  'admin-console': 'admin-console.main.ts',
  'gateway-throttle': 'gateway-throttle.main.ts',
  gateway: 'gateway.main.ts',
} as const;
type Section = keyof typeof SECTIONS;

/**
 * The benchmark runs in a child `node` that compiles the project's `.ts` files with swc and the
 * project's `.swcrc`, path aliases included, as jest does (jest.config.js). tsx cannot host the app:
 * esbuild emits no decorator metadata (Nest would inject `undefined` everywhere), and tsx turns the
 * ESM-only Nest 12 packages into CommonJS, which breaks their `import.meta.resolve` (terminus then
 * reports typeorm as missing). Plain node loads those packages with require(esm), as in production.
 */
function swcOptions(): Options {
  const swcrc = JSON.parse(readFileSync(join(ROOT, '.swcrc'), 'utf8')) as Options;
  return {
    ...swcrc,
    swcrc: false,
    jsc: {
      ...swcrc.jsc,
      baseUrl: ROOT,
      paths: { 'src/*': ['src/*'], 'migrations/*': ['migrations/*'], 'test/*': ['test/*'] },
    },
  };
}

function childScript(mainFile: string): string {
  return `
const { readFileSync } = require('node:fs');
const { transformSync } = require('@swc/core');
const options = ${JSON.stringify(swcOptions())};
require.extensions['.ts'] = (module, filename) => {
  module._compile(transformSync(readFileSync(filename, 'utf8'), { ...options, filename }).code, filename);
};
require(${JSON.stringify(join(ROOT, 'bench', mainFile))})
  .main()
  .then((code) => process.exit(code), (error) => { console.error(error); process.exit(1); });
`;
}

// The test configuration (test/setup/env.ts), with the app's log in a temporary file, not on stdout.
const baseEnv = {
  ...process.env,
  NODE_ENV: 'test',
  ENCRYPTION_KEYS: `bench1:${randomBytes(32).toString('base64')}`,
  SESSION_SECRET: randomBytes(32).toString('hex'),
  CRON_ENABLED: 'false',
  LOG_LEVEL: 'info',
  ROOT_ADMIN_EMAIL: 'root@localhost',
  ROOT_ADMIN_PASSWORD: `root-tEsTsEcReT-${randomBytes(6).toString('hex')}`,
  LOGIN_THROTTLE_LIMIT: '10000',
};

let current: ChildProcess | undefined;
let stopping = false;

/**
 * One section in a fresh process: each starts from a clean heap (the connection check measures
 * memory), its own database and its own log file. `--expose-gc` lets a main collect garbage before
 * it takes a memory baseline.
 */
function runSection(section: Section): Promise<number> {
  const env = { ...baseEnv, LOG_FILE: join(tmpdir(), `ec-bench-${process.pid}-${section}.log`) };
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--expose-gc', '-e', childScript(SECTIONS[section])], {
      cwd: ROOT,
      env,
      stdio: 'inherit',
    });
    current = child;
    child.on('exit', (code, signal) => {
      current = undefined;
      done(code ?? (signal ? 1 : 0));
    });
  });
}

async function run(): Promise<number> {
  const asked = process.argv.slice(2);
  const unknown = asked.filter((name) => !(name in SECTIONS));
  if (unknown.length > 0) {
    console.error(`Unknown section ${unknown.join(', ')}; sections: ${Object.keys(SECTIONS).join(', ')}`);
    return 2;
  }
  const sections = (Object.keys(SECTIONS) as Section[]).filter(
    (name) => asked.length === 0 || asked.includes(name),
  );
  let exitCode = 0;
  for (const [i, section] of sections.entries()) {
    if (stopping) break;
    if (i > 0) console.log(`\n${'='.repeat(100)}\n`);
    const code = await runSection(section);
    if (code !== 0 && exitCode === 0) exitCode = code;
  }
  return exitCode;
}

// Ctrl-C reaches the child too: it closes its app and drops its database, then exits; no further
// section starts.
process.on('SIGINT', () => {
  stopping = true;
});
process.on('SIGTERM', () => {
  stopping = true;
  current?.kill('SIGTERM');
});
void run().then((code) => {
  process.exitCode = code;
});
