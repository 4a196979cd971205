import { basePagingId, PagingIdScanner, PagingMemory } from './paging-links';

describe('basePagingId', () => {
  const params = (query: string) => new URLSearchParams(query);

  it("is the id of HAPI FHIR's paging link at the base", () => {
    expect(
      basePagingId([], params('_getpages=abc-1&_getpagesoffset=20&_count=10&_bundletype=searchset')),
    ).toBe('abc-1');
    expect(basePagingId([], params('_getpages=abc-1&_format=json&_pretty=true'))).toBe('abc-1');
  });

  it('is null for anything else: another path, other parameters, no id or several', () => {
    expect(basePagingId(['Patient'], params('_getpages=abc'))).toBeNull();
    expect(basePagingId([], params('_getpages=abc&_type=Patient'))).toBeNull();
    expect(basePagingId([], params('_getpages=abc&_include=*'))).toBeNull();
    expect(basePagingId([], params('_getpages=a&_getpages=b'))).toBeNull();
    expect(basePagingId([], params('_getpages='))).toBeNull();
    expect(basePagingId([], params('_getpages=a%2Fb/c'))).toBeNull();
    expect(basePagingId([], params(''))).toBeNull();
  });
});

describe('PagingIdScanner', () => {
  const UP = 'https://up.example/fhir/R4';
  const answer =
    '{"resourceType":"Bundle","link":[{"relation":"self","url":"https://up.example/fhir/R4/Observation?patient=1"},' +
    `{"relation":"next","url":"${UP}?_getpages=5f0c-99&_getpagesoffset=4&_count=4"},` +
    `{"relation":"last","url":"${UP.replaceAll('/', '\\/')}?_getpages=other.id"}],` +
    `"entry":[{"resource":{"text":{"div":"see ${UP}?_getpages=notalink"},` +
    `"link":[{"relation":"next","url":"${UP}?_getpages=nested"}]}}]}`;

  function scan(text: string, cuts: number[], base = UP): string[] {
    const sut = new PagingIdScanner(base);
    const found = new Set<string>();
    const bytes = Buffer.from(text);
    let from = 0;
    for (const cut of [...cuts, bytes.length]) {
      for (const id of sut.push(bytes.subarray(from, cut))) found.add(id);
      from = cut;
    }
    for (const id of sut.end()) found.add(id);
    return [...found].sort();
  }

  it("finds the ids of the Bundle's links, not those in its entries, wherever the answer is cut", () => {
    const whole = scan(answer, []);
    expect(whole).toEqual(['5f0c-99', 'other.id']);
    for (let cut = 0; cut <= answer.length; cut++) expect(scan(answer, [cut])).toEqual(whole);
  });

  it('takes an id that ends the answer whole, never a prefix of it', () => {
    const text = `{"link":[{"relation":"next","url":"${UP}?_getpages=abcdef`;
    for (let cut = 0; cut <= text.length; cut++) expect(scan(text, [cut])).toEqual(['abcdef']);
  });

  it('finds links in FHIR XML and pretty-printed JSON', () => {
    expect(
      scan(`<Bundle><link><relation value="next"/><url value="${UP}?_getpages=x1&amp;a=b"/></link>`, []),
    ).toEqual(['x1']);
    expect(
      scan(`{\n  "link": [ {\n    "relation": "next",\n    "url": "${UP}/?_getpages=x2"\n  } ]\n}`, []),
    ).toEqual(['x2']);
  });

  it("grants nothing for `?_getpages=` in a resource's text or at another base", () => {
    expect(scan(`{"resourceType":"Patient","text":{"div":"${UP}?_getpages=x"}}`, [])).toEqual([]);
    expect(scan(`{"resourceType":"Patient","text":{"div":"see ?_getpages=x"}}`, [])).toEqual([]);
    expect(scan(`{"link":[{"relation":"next","url":"https://elsewhere/fhir?_getpages=x"}]}`, [])).toEqual([]);
    expect(scan(`{"link":[{"relation":"next","url":"${UP}/Patient?_getpages=x"}]}`, [])).toEqual([]);
  });
});

describe('PagingMemory', () => {
  it('knows the ids passed on to a key, for that key only', () => {
    const sut = new PagingMemory();
    sut.remember('key-a', 'search-1');
    expect(sut.knows('key-a', 'search-1')).toBe(true);
    expect(sut.knows('key-b', 'search-1')).toBe(false);
    expect(sut.knows('key-a', 'search-2')).toBe(false);
  });

  it('forgets an id once its time is up, counted from when it was last passed on', () => {
    let now = 0;
    const sut = new PagingMemory({ ttlMs: 1000, maxEntries: 10, maxPerKey: 10 }, () => now);
    sut.remember('k', 's');
    now = 900;
    sut.remember('k', 's'); // passed on again (a next page)
    now = 1800;
    expect(sut.knows('k', 's')).toBe(true);
    now = 1900;
    expect(sut.knows('k', 's')).toBe(false);
  });

  it('holds at most maxEntries ids, forgetting the least recently passed on', () => {
    const sut = new PagingMemory({ ttlMs: 60_000, maxEntries: 3, maxPerKey: 3 });
    for (const id of ['1', '2', '3']) sut.remember('k', id);
    sut.remember('k', '1');
    sut.remember('k', '4');
    expect(['1', '2', '3', '4'].map((id) => sut.knows('k', id))).toEqual([true, false, true, true]);
  });

  it("holds at most maxPerKey ids per key: one key's flood forgets its own oldest, not another key's", () => {
    const sut = new PagingMemory({ ttlMs: 60_000, maxEntries: 10, maxPerKey: 3 });
    sut.remember('other', 'kept');
    for (const id of ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11']) sut.remember('flood', id);
    expect(sut.knows('other', 'kept')).toBe(true);
    expect(['8', '9', '10', '11'].map((id) => sut.knows('flood', id))).toEqual([false, true, true, true]);
  });
});
