import type hbsModule from 'hbs';

/** Handlebars helpers used by the views. Output stays HTML-escaped unless a helper says otherwise. */
export function registerViewHelpers(hbs: typeof hbsModule): void {
  hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hbs.registerHelper('or', (...args: unknown[]) => args.slice(0, -1).some(Boolean));
  hbs.registerHelper('datetime', (iso: unknown) =>
    typeof iso === 'string' && iso ? new Date(iso).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : '—',
  );
  hbs.registerHelper('json', (value: unknown) => JSON.stringify(value ?? {}));
}
