/**
 * @deprecated EpicAuth errors are DomainErrors, answered by the global filter's JSON transport
 * (src/common/filters/api-error.filter.ts), which this name now aliases. It remains only so that
 * epic-connection.controller.ts compiles while EpicAuth is being split: remove that controller's
 * `@UseFilters(EpicAuthApiFilter)` (a no-op: its routes are JSON) and delete this file.
 */
export { ApiErrorFilter as EpicAuthApiFilter } from 'src/common/filters/api-error.filter';
