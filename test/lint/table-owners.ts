// The ownership map of the table-ownership lint rule, for tests outside test/lint (path alias `test/…`).
export { TABLE_OWNERS, UNOWNED_TABLES } from '../../eslint/table-ownership.mjs';
