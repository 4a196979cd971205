// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

import { tableOwnership } from './eslint/table-ownership.mjs';

/** Feature modules whose internals stay private: see STYLE.md §4.3. */
const FEATURE_MODULES = [
  'organizations',
  'epic-auth',
  'fhir-client',
  'connection-health',
  'admin-ui',
  'users',
  'auth',
  'audit',
  'client-keys',
  'connections',
  'api-keys',
  'gateway',
];
/** What another module may import from a feature module. */
const PUBLIC_FILE =
  /(\.module|\.service|\.read-model|\.events|\.errors|\.view|\.types|\.dto|\.bootstrap)$|\/dto\//;

/** Imports across feature modules go through the module's front door only. */
const moduleBoundaries = {
  meta: {
    type: 'problem',
    messages: {
      internal:
        '{{target}} is internal to the {{module}} module; import its exported service or types instead.',
    },
  },
  create(context) {
    const file = context.filename.replace(/\\/g, '/');
    const own = /\/src\/([^/]+)\//.exec(file)?.[1];
    // The one DataSource lists every entity and migration by design.
    if (file.endsWith('/src/database/data-source.ts')) return {};
    return {
      ImportDeclaration(node) {
        const source = String(node.source.value);
        const match = /^src\/([^/]+)\/(.+)$/.exec(source);
        if (!match || !own) return;
        const [, module, rest] = match;
        if (module === own || !FEATURE_MODULES.includes(module)) return;
        if (PUBLIC_FILE.test(`/${rest}`)) return;
        context.report({ node, messageId: 'internal', data: { target: source, module } });
      },
    };
  },
};

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'coverage/**',
      'scratch/**',
      'data/**',
      'public/**',
      '*.js',
      '*.mjs',
      // The local rules are plain JavaScript outside the TypeScript project (table-ownership.d.mts types them).
      'eslint/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: {
      local: { rules: { 'module-boundaries': moduleBoundaries, 'table-ownership': tableOwnership } },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/require-await': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-namespace': ['error', { allowDeclarations: true }],
      eqeqeq: ['error', 'always'],
      curly: ['error', 'multi-line'],
      'no-restricted-imports': [
        'error',
        // The local rules in eslint/ have no alias: test/lint/ imports them relatively.
        { patterns: [{ group: ['../../*', '!../../eslint'], message: 'Use the src/… path alias.' }] },
      ],
      'local/module-boundaries': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/**/*.spec.ts'],
    rules: {
      'no-console': 'error',
      // SQL names only its own module's tables; the owners are declared in eslint/table-ownership.mjs.
      'local/table-ownership': 'error',
    },
  },
  {
    files: ['**/*.spec.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
      'local/module-boundaries': 'off',
    },
  },
);
