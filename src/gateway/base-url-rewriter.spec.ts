import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import {
  BaseUrlReplacer,
  BaseUrlRewriteStream,
  baseUrlReplacements,
  Replacement,
  rewriteText,
} from './base-url-rewriter';

const UPSTREAM = 'https://fhir.example.org/interconnect-fhir-oauth/api/FHIR/R4';
const GATEWAY = 'https://connect.example.net/gateway/st-marys/fhir';
const replacements = baseUrlReplacements(UPSTREAM, GATEWAY);

/** Feeds `input` to a fresh replacer cut at `cuts` (sorted offsets) and returns the whole output. */
function feed(input: Buffer, cuts: number[], using: Replacement[] = replacements): string {
  const sut = new BaseUrlReplacer(using);
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    out.push(sut.push(input.subarray(from, cut)));
    from = cut;
  }
  out.push(sut.end());
  return Buffer.concat(out).toString();
}

/** The expected result, computed independently: a global regex over the whole text. */
function expected(text: string): string {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  // UPSTREAM's scheme and host are already in lower case: two spellings, each plain and escaped
  // (`\/`, `\u002F`, `\u002f`).
  const spellings = [UPSTREAM, UPSTREAM.toLowerCase()];
  let out = text;
  for (const spelling of new Set(spellings)) {
    for (const slash of ['\\/', '\\u002F', '\\u002f']) {
      out = out.replace(
        new RegExp(`${escape(spelling.split('/').join(slash))}(?![A-Za-z0-9\\-._~%:@+])`, 'g'),
        GATEWAY.split('/').join(slash),
      );
    }
    out = out.replace(new RegExp(`${escape(spelling)}(?![A-Za-z0-9\\-._~%:@+])`, 'g'), GATEWAY);
  }
  return out;
}

const bundle = JSON.stringify({
  resourceType: 'Bundle',
  type: 'searchset',
  link: [
    { relation: 'self', url: `${UPSTREAM}/Observation?patient=123` },
    { relation: 'next', url: `${UPSTREAM}/Observation?patient=123&_getpagesoffset=10` },
  ],
  entry: [{ fullUrl: `${UPSTREAM}/Observation/abc`, resource: { resourceType: 'Observation', id: 'abc' } }],
});

describe('BaseUrlReplacer', () => {
  it('replaces every URL under the upstream base, and nothing else', () => {
    const out = feed(Buffer.from(bundle), []);
    expect(out).not.toContain('fhir.example.org');
    expect(JSON.parse(out)).toEqual({
      resourceType: 'Bundle',
      type: 'searchset',
      link: [
        { relation: 'self', url: `${GATEWAY}/Observation?patient=123` },
        { relation: 'next', url: `${GATEWAY}/Observation?patient=123&_getpagesoffset=10` },
      ],
      entry: [
        { fullUrl: `${GATEWAY}/Observation/abc`, resource: { resourceType: 'Observation', id: 'abc' } },
      ],
    });
  });

  it('gives the same bytes whatever the one place a stream is cut (every offset)', () => {
    const input = Buffer.from(bundle);
    const whole = feed(input, []);
    for (let cut = 0; cut <= input.length; cut++) {
      expect(feed(input, [cut])).toBe(whole);
    }
  });

  it('gives the same bytes whatever two places a stream is cut, around a match', () => {
    const text = `{"a":"${UPSTREAM}","b":"${UPSTREAM.replace(/\//g, '\\/')}\\/Patient\\/1"}`;
    const input = Buffer.from(text);
    const whole = feed(input, []);
    expect(whole).toBe(expected(text));
    for (let a = 0; a <= input.length; a++) {
      for (let b = a; b <= input.length; b++) {
        if (feed(input, [a, b]) !== whole) throw new Error(`differs when cut at ${a} and ${b}`);
      }
    }
  });

  it('handles a stream fed one byte at a time', () => {
    const input = Buffer.from(bundle);
    const cuts = Array.from({ length: input.length - 1 }, (_, i) => i + 1);
    expect(feed(input, cuts)).toBe(feed(input, []));
  });

  it("replaces JSON's escaped form with the escaped gateway base", () => {
    const escaped = `{"url":"${UPSTREAM.replace(/\//g, '\\/')}\\/Patient\\/1"}`;
    const out = feed(Buffer.from(escaped), []);
    expect(out).toBe(`{"url":"${GATEWAY.replace(/\//g, '\\/')}\\/Patient\\/1"}`);
    expect(JSON.parse(out)).toEqual({ url: `${GATEWAY}/Patient/1` });
  });

  it('replaces a base written with \\u002F-escaped slashes, keeping that style, at every cut', () => {
    for (const slash of ['\\u002F', '\\u002f']) {
      const escaped = `{"url":"${UPSTREAM.split('/').join(slash)}${slash}Patient${slash}1"}`;
      const want = `{"url":"${GATEWAY.split('/').join(slash)}${slash}Patient${slash}1"}`;
      const input = Buffer.from(escaped);
      for (let cut = 0; cut <= input.length; cut++) expect(feed(input, [cut])).toBe(want);
      expect(JSON.parse(want)).toEqual({ url: `${GATEWAY}/Patient/1` });
    }
    // A longer URL that only begins like the base, so escaped, is left alone.
    const other = `"${UPSTREAM.split('/').join('\\u002F')}B\\u002FPatient"`;
    expect(feed(Buffer.from(other), [])).toBe(other);
  });

  it('leaves a URL that only begins like the base (R4B, another port, a longer host)', () => {
    for (const other of [`${UPSTREAM}B/Patient/1`, `${UPSTREAM}.old`, `${UPSTREAM}-2/x`]) {
      const text = `{"url":"${other}"}`;
      expect(feed(Buffer.from(text), [])).toBe(text);
    }
    const origin = baseUrlReplacements('https://fhir.example.org', GATEWAY);
    expect(feed(Buffer.from('"https://fhir.example.org:8443/x"'), [], origin)).toBe(
      '"https://fhir.example.org:8443/x"',
    );
    expect(feed(Buffer.from('"https://fhir.example.org/x"'), [], origin)).toBe(`"${GATEWAY}/x"`);
  });

  it('replaces the base that ends the stream, or is followed by ?, # or a quote', () => {
    expect(feed(Buffer.from(UPSTREAM), [])).toBe(GATEWAY);
    expect(feed(Buffer.from(`${UPSTREAM}?_id=1`), [10])).toBe(`${GATEWAY}?_id=1`);
    expect(feed(Buffer.from(`<url value="${UPSTREAM}#x"/>`), [])).toBe(`<url value="${GATEWAY}#x"/>`);
  });

  it('matches the scheme and host in any case, and the whole base in lower case', () => {
    const upper = baseUrlReplacements('HTTPS://FHIR.Example.ORG/api/FHIR/R4', GATEWAY);
    expect(feed(Buffer.from('"https://fhir.example.org/api/FHIR/R4/Patient/1"'), [], upper)).toBe(
      `"${GATEWAY}/Patient/1"`,
    );
    expect(feed(Buffer.from(`"${UPSTREAM.toLowerCase()}/Patient/1"`), [])).toBe(`"${GATEWAY}/Patient/1"`);
  });

  it('keeps a multi-byte character split across pieces intact', () => {
    const text = `{"name":"Zoë 😀","url":"${UPSTREAM}/Patient/1"}`;
    const input = Buffer.from(text);
    for (let cut = 0; cut <= input.length; cut++) {
      expect(feed(input, [cut])).toBe(`{"name":"Zoë 😀","url":"${GATEWAY}/Patient/1"}`);
    }
  });

  it('agrees with a plain regex replacement on random text dense with near-matches', () => {
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const parts = [
      UPSTREAM,
      UPSTREAM.replace(/\//g, '\\/'),
      UPSTREAM.split('/').join('\\u002F'),
      UPSTREAM.toLowerCase().split('/').join('\\u002f'),
      UPSTREAM.toLowerCase(),
      UPSTREAM.slice(0, 20),
      `${UPSTREAM}B`,
      '/',
      '"',
      'x',
      '\\/',
      '\\u002F',
      ' ',
    ];
    for (let round = 0; round < 200; round++) {
      const text = Array.from({ length: 30 }, () => parts[Math.floor(random() * parts.length)]).join('');
      const input = Buffer.from(text);
      const cuts = [...new Set(Array.from({ length: 4 }, () => Math.floor(random() * input.length)))].sort(
        (a, b) => a - b,
      );
      expect(feed(input, cuts)).toBe(expected(text));
    }
  });

  it('never holds back more than the longest spelling', () => {
    const sut = new BaseUrlReplacer(replacements);
    const longest = Math.max(...replacements.map((r) => r.from.length));
    let given = 0;
    const piece = Buffer.from(`${UPSTREAM.slice(0, 30)}${'x'.repeat(1000)}`);
    for (let i = 0; i < 100; i++) {
      given += sut.push(piece).length;
      expect(piece.length * (i + 1) - given).toBeLessThanOrEqual(longest);
    }
  });
});

describe('BaseUrlRewriteStream', () => {
  it('rewrites a stream of many pieces', async () => {
    const pieces = Array.from({ length: 2000 }, (_, i) =>
      Buffer.from(`{"fullUrl":"${UPSTREAM}/Observation/${i}"},`),
    );
    // Pieces of odd sizes, so matches fall across them.
    const all = Buffer.concat(pieces);
    const chunks: Buffer[] = [];
    for (let at = 0; at < all.length; at += 777) chunks.push(all.subarray(at, at + 777));
    const out: Buffer[] = [];
    await pipeline(Readable.from(chunks), new BaseUrlRewriteStream(replacements), async (source) => {
      for await (const chunk of source) out.push(chunk as Buffer);
    });
    const text = Buffer.concat(out).toString();
    expect(text).not.toContain('fhir.example.org');
    expect(text.split(`${GATEWAY}/Observation/`).length - 1).toBe(2000);
  });
});

describe('rewriteText', () => {
  it('rewrites a Location header, and leaves a URL elsewhere', () => {
    expect(rewriteText(`${UPSTREAM}/Patient/1/_history/2`, replacements)).toBe(
      `${GATEWAY}/Patient/1/_history/2`,
    );
    expect(rewriteText('https://elsewhere.example/Patient/1', replacements)).toBe(
      'https://elsewhere.example/Patient/1',
    );
  });
});
