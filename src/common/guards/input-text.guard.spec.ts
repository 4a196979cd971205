import { BadRequestException, ExecutionContext } from '@nestjs/common';

import { InputTextGuard } from './input-text.guard';

function check(_route: 'plain', req: { params?: object; query?: object; body?: unknown }): string[] {
  const request = { params: {}, query: {}, ...req };
  const ctx = {
    switchToHttp: () => ({ getRequest: () => request }),
  } as unknown as ExecutionContext;
  try {
    new InputTextGuard().canActivate(ctx);
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(BadRequestException);
    return ((error as BadRequestException).getResponse() as { message: string[] }).message;
  }
}

describe('InputTextGuard', () => {
  it('passes ordinary text, accents, emoji and non-string values', () => {
    expect(
      check('plain', {
        query: { q: 'Hôpital Zürich 🏥' },
        body: { n: 1, ok: true, list: ['a', 'b'], none: null },
      }),
    ).toEqual([]);
  });

  it.each([
    ['NUL', '\u0000'],
    ['LF', '\n'],
    ['CR', '\r'],
    ['tab', '\t'],
    ['ESC', '\u001b'],
    ['DEL', '\u007f'],
    ['C1 NEL', '\u0085'],
  ])('names the field holding %s, wherever it is, never the value', (_label, c) => {
    expect(check('plain', { params: { orgId: `x${c}` } })).toEqual([
      'orgId must not contain control characters (such as NUL or line breaks)',
    ]);
    expect(check('plain', { body: { client: { id: `x${c}y` }, names: ['ok', `b${c}`] } })).toEqual([
      'client.id must not contain control characters (such as NUL or line breaks)',
      'names must not contain control characters (such as NUL or line breaks)',
    ]);
  });

  it('refuses a control character in a field name', () => {
    expect(check('plain', { body: { ['a\u0000']: 'x' } })).toEqual([
      'a field name must not contain control characters',
    ]);
  });

  it('refuses input nested deeper than any form', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 12; i++) deep = { d: deep };
    expect(check('plain', { body: deep })).toEqual([expect.stringContaining('is nested too deeply')]);
  });
});
