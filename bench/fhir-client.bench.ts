// FhirClient benchmark: `npx tsx bench/fhir-client.bench.ts` (see bench/README.md).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import type { Options } from '@swc/core';

const ROOT = resolve(__dirname, '..');

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

const CHILD = `
const { readFileSync } = require('node:fs');
const { transformSync } = require('@swc/core');
const options = ${JSON.stringify(swcOptions())};
require.extensions['.ts'] = (module, filename) => {
  module._compile(transformSync(readFileSync(filename, 'utf8'), { ...options, filename }).code, filename);
};
require(${JSON.stringify(join(ROOT, 'bench', 'fhir-client.main.ts'))})
  .main()
  .then((code) => process.exit(code), (error) => { console.error(error); process.exit(1); });
`;

// The test configuration (test/setup/env.ts), with the app's log in a temporary file, not on stdout.
const env = {
  ...process.env,
  NODE_ENV: 'test',
  ENCRYPTION_KEYS: `bench1:${randomBytes(32).toString('base64')}`,
  SESSION_SECRET: randomBytes(32).toString('hex'),
  CRON_ENABLED: 'false',
  LOG_LEVEL: 'info',
  LOG_FILE: join(tmpdir(), `ec-bench-${process.pid}.log`),
  ROOT_ADMIN_EMAIL: 'root@localhost',
  ROOT_ADMIN_PASSWORD: `root-tEsTsEcReT-${randomBytes(6).toString('hex')}`,
  LOGIN_THROTTLE_LIMIT: '10000',
};

const child = spawn(process.execPath, ['-e', CHILD], { cwd: ROOT, env, stdio: 'inherit' });
// Ctrl-C reaches the child too: it closes the apps and drops its database, then exits.
const ignore = (): void => undefined;
process.on('SIGINT', ignore);
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => {
  process.exitCode = code ?? (signal ? 1 : 0);
});
