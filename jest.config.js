// Jest runs TypeScript through SWC (ts-jest cannot load the ESM-only Nest 12 packages).
// ESM-only dependencies are transformed to CommonJS too: list them in ESM_PACKAGES.
const ESM_PACKAGES = [
  '@nestjs',
  'openid-client',
  'oauth4webapi',
  'jose',
  'file-type',
  'strtok3',
  'token-types',
  'peek-readable',
  '@tokenizer',
  'uint8array-extras',
  '@borewit',
];

// .swcrc plus the path aliases, resolved against this folder (swc needs an absolute baseUrl).
// swc rewrites the aliases itself, so they also work in globalSetup, which Jest does not map.
const swcrc = JSON.parse(require('node:fs').readFileSync(`${__dirname}/.swcrc`, 'utf8'));
const swcForTs = {
  ...swcrc,
  swcrc: false,
  jsc: {
    ...swcrc.jsc,
    baseUrl: __dirname,
    paths: { 'src/*': ['src/*'], 'migrations/*': ['migrations/*'], 'test/*': ['test/*'] },
  },
};

const shared = {
  rootDir: __dirname,
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['@swc/jest', swcForTs],
    '^.+\\.m?js$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } },
    ],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${ESM_PACKAGES.join('|')})/)`],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
};

/** @type {import('jest').Config} */
module.exports = {
  maxWorkers: 2,
  // A global option (Jest ignores it inside a project): e2e hooks boot apps and fake servers, which
  // takes longer than the 5 s default on a busy two-core machine.
  testTimeout: 30000,
  projects: [
    {
      ...shared,
      displayName: 'unit',
      testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
    },
    {
      ...shared,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      globalSetup: '<rootDir>/test/setup/global-setup.ts',
      globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
      setupFiles: ['<rootDir>/test/setup/env.ts'],
    },
  ],
};
