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
