import type { Rule } from 'eslint';

/** Which feature module (a folder under src/) owns which table. */
export declare const TABLE_OWNERS: Readonly<Record<string, readonly string[]>>;
/** TypeORM's bookkeeping tables: nobody's, ignored by the rule. */
export declare const UNOWNED_TABLES: readonly string[];
/** local/table-ownership: SQL in one feature module does not touch another module's tables. */
export declare const tableOwnership: Rule.RuleModule;
