/**
 * What the pages and messages call an organization's FHIR server. This service connects to Epic
 * and to any SMART on FHIR server: only an Epic organization should read "Epic", and only it gets
 * Epic's own help (fhir.epic.com registration, Epic's sandbox, Backend Systems apps).
 *
 * The rule, in order:
 * 1. A name an administrator gave the server (`fhir_server_name`) is used as given. It also says
 *    whether the server is Epic: it is when the name contains the word "Epic" ("Epic at Mercy").
 * 2. Otherwise the base URL decides: Epic's hosts (fhir.epic.com, *.epic.com, *.epichosted.com) and
 *    Epic's path layout, `{server}/api/FHIR/R4` (or STU3, DSTU2; Epic's casing), e.g.
 *    `…/interconnect-fhir-oauth/api/FHIR/R4`. Where the caller has the server's SMART discovery
 *    document, Epic's shape there counts too: `jwks_uri` under `/api/epic/`, or the OpenID issuer
 *    `{server}/oauth2` for a base `{server}/api/FHIR/…`. A generic SMART server has neither.
 * 3. No base URL yet: Epic, the service's default (a sandbox organization starts on Epic's sandbox).
 *
 * An Epic server is called "Epic"; any other, unnamed, "the EHR".
 */

/** The parts of a SMART discovery document (`.well-known/smart-configuration`) that tell Epic apart. */
export interface DiscoveryHints {
  issuer?: string | null;
  jwksUri?: string | null;
}

export interface ServerLabel {
  /** In a sentence: "Epic", the administrator's name, or "the EHR". */
  name: string;
  /** At the start of a sentence: "Epic", the name, or "The EHR". */
  subject: string;
  /** Before a noun ("<x> connection", "<x> account", "<x> registration"): "Epic", the name, or "EHR". */
  noun: string;
  /** "Epic's", "Cerner Millennium's", "the EHR's". */
  possessive: string;
  /** Epic: Epic-specific help and wording apply. */
  isEpic: boolean;
  /** Where the name comes from: the administrator, or this service's guess. */
  source: 'admin' | 'detected';
}

export const EPIC_LABEL: ServerLabel = label('Epic', true, 'detected');

/** Epic's FHIR path layout, `{server}/api/FHIR/{version}`, in Epic's casing. */
const EPIC_FHIR_PATH = /\/api\/FHIR\/(R4|STU3|DSTU2)\/?$/;
const EPIC_HOSTS = /(^|\.)(epic\.com|epichosted\.com)$/i;
const EPIC_WORD = /\bepic\b/i;

/** Whether a FHIR base URL has Epic's shape (host or path). Not a URL: false. */
export function isEpicBaseUrl(fhirBaseUrl: string): boolean {
  let url: URL;
  try {
    url = new URL(fhirBaseUrl);
  } catch {
    return false;
  }
  return EPIC_HOSTS.test(url.hostname) || EPIC_FHIR_PATH.test(url.pathname);
}

/** Whether a discovery document has Epic's shape: keys under `/api/epic/`, or issuer `{server}/oauth2`. */
export function isEpicDiscovery(fhirBaseUrl: string | null, discovery: DiscoveryHints): boolean {
  if (discovery.jwksUri && /\/api\/epic\//i.test(discovery.jwksUri)) return true;
  const issuer = discovery.issuer?.replace(/\/+$/, '');
  if (!issuer || !fhirBaseUrl || !issuer.endsWith('/oauth2')) return false;
  const server = issuer.slice(0, -'/oauth2'.length);
  return fhirBaseUrl.startsWith(`${server}/api/FHIR/`);
}

/** Trimmed, or null when blank. */
function givenName(name: string | null | undefined): string | null {
  const trimmed = name?.trim();
  return trimmed ? trimmed : null;
}

function label(name: string, isEpic: boolean, source: ServerLabel['source']): ServerLabel {
  return {
    name,
    subject: name.charAt(0).toUpperCase() + name.slice(1),
    noun: name,
    possessive: `${name}’s`,
    isEpic,
    source,
  };
}

const GENERIC_LABEL: ServerLabel = {
  name: 'the EHR',
  subject: 'The EHR',
  noun: 'EHR',
  possessive: 'the EHR’s',
  isEpic: false,
  source: 'detected',
};

/** What to call the organization's FHIR server, and whether it is Epic (rules above). */
export function serverLabel(input: {
  fhirBaseUrl: string | null;
  fhirServerName?: string | null;
  discovery?: DiscoveryHints | null;
}): ServerLabel {
  const named = givenName(input.fhirServerName);
  if (named) return label(named, EPIC_WORD.test(named), 'admin');
  if (!input.fhirBaseUrl) return EPIC_LABEL;
  const epic =
    isEpicBaseUrl(input.fhirBaseUrl) ||
    (input.discovery ? isEpicDiscovery(input.fhirBaseUrl, input.discovery) : false);
  return epic ? EPIC_LABEL : GENERIC_LABEL;
}

/**
 * A message written for Epic, said of the organization's server: "Epic's token endpoint" becomes
 * "the EHR's token endpoint" (or the administrator's name), at a sentence start "The EHR's…", and
 * Epic-only asides such as "(Epic: this can take hours)" are dropped. Epic organizations get the
 * message unchanged.
 */
export function speakOfServer(message: string, server: { isEpic: boolean; name: string }): string {
  if (server.isEpic) return message;
  const { subject, possessive } = label(server.name, false, 'detected');
  const possessiveSubject = possessive.charAt(0).toUpperCase() + possessive.slice(1);
  const text = message.replace(/\s*\(Epic: [^)]*\)/g, '');
  return text.replace(/\bEpic(['’]s)?\b/g, (_match, s: string | undefined, offset: number) => {
    const atStart = offset === 0 || /[.!?:]\s+$/.test(text.slice(0, offset));
    if (s) return atStart ? possessiveSubject : possessive;
    return atStart ? subject : server.name;
  });
}
