/** How a caller authenticates to the gateway, in place of the FHIR server's own security. */
export const GATEWAY_SECURITY = {
  cors: false,
  description:
    'An API key issued by the organization, sent as Authorization: Bearer <key>. The gateway holds ' +
    "the organization's own authorization with the FHIR server.",
};

/**
 * The FHIR server's CapabilityStatement as the gateway serves it: `rest[].security` describes the
 * gateway's own authentication instead of the server's. The server's (the SMART `oauth-uris`
 * extension, its OAuth endpoints: docs/epic-and-smart.md §1) does not apply to the gateway's
 * callers, and would name the server. Anything that is not a CapabilityStatement is returned as is.
 */
export function gatewayCapabilityStatement(statement: unknown): unknown {
  const value = statement as { resourceType?: unknown; rest?: unknown } | null;
  if (value?.resourceType !== 'CapabilityStatement' || !Array.isArray(value.rest)) return statement;
  return {
    ...value,
    rest: value.rest.map((rest: unknown) =>
      rest && typeof rest === 'object' ? { ...rest, security: GATEWAY_SECURITY } : rest,
    ),
  };
}

/** The gateway's security in FHIR XML (FHIR R4 CapabilityStatement.rest.security). */
const GATEWAY_SECURITY_XML =
  `<security><cors value="${String(GATEWAY_SECURITY.cors)}"/>` +
  `<description value="${escapeXml(GATEWAY_SECURITY.description)}"/></security>`;

/** Children of `rest` that come before `security` in FHIR's element order (FHIR R4 CapabilityStatement). */
const BEFORE_SECURITY = new Set(['extension', 'modifierExtension', 'mode', 'documentation']);

/**
 * The same for a CapabilityStatement in FHIR XML (`application/fhir+xml`): each `rest/security` of
 * the root `CapabilityStatement` replaced by the gateway's (added where a `rest` has none, at its
 * place in FHIR's element order), every other byte as the server wrote it. A targeted transform over
 * a small XML tokenizer rather than a parse and a rewrite, so nothing else changes: comments,
 * processing instructions and CDATA are skipped, attribute values may hold `>`. It fails closed:
 * null for anything it does not fully understand (a DOCTYPE, whose entities could hide markup, an
 * encoding other than UTF-8, a prefixed FHIR element, a tag left open or closed twice, another
 * root), and the gateway then refuses to pass the statement on.
 */
export function gatewayCapabilityStatementXml(xml: string): string | null {
  const declared = /^\s*<\?xml[^>]*\bencoding\s*=\s*["']([^"']+)["']/i.exec(xml)?.[1];
  if (declared !== undefined && !/^utf-?8$/i.test(declared)) return null;
  const stack: string[] = [];
  const edits: { from: number; to: number; text: string }[] = [];
  /** In the current `rest`: where its security starts (or -1), where one would go, whether it had one. */
  let rest: { securityAt: number; insertAt: number; hadSecurity: boolean } | null = null;
  let root = false;
  let pos = 0;
  for (;;) {
    const open = xml.indexOf('<', pos);
    if (open === -1) break;
    const skipTo = (end: string): number => {
      const at = xml.indexOf(end, open);
      return at === -1 ? -1 : at + end.length;
    };
    if (xml.startsWith('<!--', open) || xml.startsWith('<?', open) || xml.startsWith('<![CDATA[', open)) {
      const end = skipTo(xml.startsWith('<!--', open) ? '-->' : xml.startsWith('<?', open) ? '?>' : ']]>');
      if (end === -1) return null;
      pos = end;
      continue;
    }
    if (xml.startsWith('<!', open)) return null; // DOCTYPE: entities could expand into markup
    const tag = /^<(\/?)([A-Za-z_][\w.:-]*)/.exec(xml.slice(open, open + 200));
    if (!tag) return null;
    const [, closing, name] = tag;
    // The tag's end: the first `>` outside a quoted attribute value.
    let end = open + tag[0].length;
    let quote = '';
    for (; end < xml.length; end++) {
      const c = xml[end];
      if (quote) {
        if (c === quote) quote = '';
      } else if (c === '"' || c === "'") {
        quote = c;
      } else if (c === '>') {
        break;
      }
    }
    if (end >= xml.length) return null;
    const selfClosing = !closing && xml[end - 1] === '/';
    pos = end + 1;
    const depth = stack.length; // of this element, if it opens one
    if (closing) {
      if (stack.pop() !== name) return null;
      if (depth === 2 && name === 'rest' && rest) {
        if (!rest.hadSecurity) {
          const at = rest.insertAt === -1 ? open : rest.insertAt;
          edits.push({ from: at, to: at, text: GATEWAY_SECURITY_XML });
        }
        rest = null;
      }
      if (depth === 3 && name === 'security' && rest && rest.securityAt !== -1) {
        edits.push({ from: rest.securityAt, to: pos, text: GATEWAY_SECURITY_XML });
        rest.securityAt = -1;
      }
      continue;
    }
    if (depth === 0) {
      // One root, the FHIR namespace's CapabilityStatement.
      if (
        root ||
        name !== 'CapabilityStatement' ||
        !/\bxmlns\s*=\s*["']http:\/\/hl7\.org\/fhir["']/.test(xml.slice(open, pos))
      ) {
        return null;
      }
      root = true;
    }
    if (depth <= 3 && name.includes(':')) return null;
    if (depth === 1 && name === 'rest') {
      if (selfClosing) return null; // a rest without its mode is no FHIR
      rest = { securityAt: -1, insertAt: -1, hadSecurity: false };
    }
    if (depth === 2 && rest) {
      if (name === 'security') {
        rest.hadSecurity = true;
        if (selfClosing) edits.push({ from: open, to: pos, text: GATEWAY_SECURITY_XML });
        else rest.securityAt = open;
      } else if (!BEFORE_SECURITY.has(name) && rest.insertAt === -1) {
        rest.insertAt = open;
      }
    }
    if (!selfClosing) stack.push(name);
  }
  if (!root || stack.length > 0) return null;
  let out = '';
  let at = 0;
  for (const edit of edits.sort((a, b) => a.from - b.from)) {
    out += xml.slice(at, edit.from) + edit.text;
    at = edit.to;
  }
  return out + xml.slice(at);
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
