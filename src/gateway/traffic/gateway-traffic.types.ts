/**
 * One gateway request of an authenticated API key, as recorded. Deliberately without the query
 * string, the body and the resource id: searches carry names, birth dates and identifiers, bodies
 * carry the resources, and an id (`Patient/123`) names a patient. The resource type says what kind
 * of data was touched without saying whose.
 */
export interface GatewayAccess {
  organizationId: string;
  /** The API key's public id (`ecgk_<keyId>`). */
  apiKeyId: string;
  /** The user whose own connection served the request (X-Epic-Connect-User), else null. */
  userId: string | null;
  method: string;
  /** The first path segment when it is a resource type (`Patient`), else null (the base, `metadata`, `$op`). */
  resourceType: string | null;
  /** The status answered; 499 when the caller left before any answer. */
  status: number;
  durationMs: number;
  bytesSent: number;
  at: Date;
}

/** What leaves the module: one access record, newest first in a page. */
export interface GatewayAccessView {
  id: string;
  apiKeyId: string;
  userId: string | null;
  method: string;
  resourceType: string | null;
  status: number;
  durationMs: number;
  bytesSent: number;
  at: string;
}

/** A page of access records; `nextBefore` asks for the next (older) page, null at the end. */
export interface GatewayAccessPage {
  records: GatewayAccessView[];
  nextBefore: string | null;
}

/** One hour of an organization's gateway traffic. */
export interface TrafficHour {
  /** The hour's start (UTC). */
  hour: Date;
  requests: number;
  /** Answers with a status of 400 or more (refusals, throttling and the server's own errors). */
  errors: number;
}
