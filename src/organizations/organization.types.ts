/** Which Epic an organization connects to. */
export enum EpicEnvironment {
  Sandbox = 'sandbox',
  Production = 'production',
}

/** Epic's public sandbox FHIR R4 base (open.epic). */
export const EPIC_SANDBOX_FHIR_BASE = 'https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4';
