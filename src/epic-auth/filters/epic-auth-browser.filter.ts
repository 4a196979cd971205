/**
 * @deprecated EpicAuth errors are DomainErrors, answered by the global filter's browser transport
 * (src/common/filters/browser-error.filter.ts), which this name now aliases. It remains only so that
 * epic-authorize.controller.ts compiles while EpicAuth is being split: remove that controller's
 * `@UseFilters(EpicAuthBrowserFilter)` (a no-op: its routes are @HtmlRoutes) and delete this file.
 */
export { BrowserErrorFilter as EpicAuthBrowserFilter } from 'src/common/filters/browser-error.filter';
