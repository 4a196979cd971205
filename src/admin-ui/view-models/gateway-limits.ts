import type { FlashMessage } from 'src/common/flash';
import { GATEWAY_CONCURRENCY_RANGE, GATEWAY_RATE_RANGE } from 'src/config/env.schema';
import type { LimitsChange, LimitsOverride } from 'src/gateway/throttle/gateway-throttle.service';

/** An organization's gateway limits: rate (requests started per second) and concurrency (in flight). */
export interface GatewayLimits {
  ratePerSecond: number;
  concurrency: number;
}

/**
 * What the organization page is told: the root admin's override as stored (null: that limit is the
 * default) and the defaults from config. The limits in force follow from the two.
 */
export interface GatewayLimitsFacts {
  override: LimitsOverride;
  /** `GATEWAY_RATE_PER_SECOND`, `GATEWAY_CONCURRENCY`. */
  defaults: GatewayLimits;
}

/** The limits form as typed (blank: the default). */
export interface GatewayLimitsForm {
  ratePerSecond: string;
  concurrency: string;
}

/** The posted form, unchecked. `useDefaults` is the "Use the defaults" button. */
export type PostedGatewayLimitsForm = Partial<Record<keyof GatewayLimitsForm | 'useDefaults', unknown>>;

/** One limit, in words. */
export interface LimitLine {
  /** The limit in force: the override, or the default. */
  value: number;
  default: number;
  source: 'default' | 'override';
  /**
   * "20 requests per second (default, from config)", "50 requests per second (override; the default
   * is 20)", or "20 requests per second (override, equal to the default)".
   */
  text: string;
}

/** The organization page's "FHIR gateway limits" card. */
export interface GatewayLimitsPanel {
  rate: LimitLine;
  concurrency: LimitLine;
  /** Whether either limit is overridden, even to its default's value (then "Use the defaults" is offered). */
  overridden: boolean;
  /** Root admins only: the form to set an override or go back to the defaults. */
  form: GatewayLimitsForm;
  errors: Record<string, string>;
  hasErrors: boolean;
  ranges: { rate: { min: number; max: number }; concurrency: { min: number; max: number } };
}

function line(override: number | null, defaultValue: number, unit: string): LimitLine {
  if (override === null) {
    return {
      value: defaultValue,
      default: defaultValue,
      source: 'default',
      text: `${defaultValue} ${unit} (default, from config)`,
    };
  }
  return {
    value: override,
    default: defaultValue,
    source: 'override',
    text:
      override === defaultValue
        ? `${override} ${unit} (override, equal to the default)`
        : `${override} ${unit} (override; the default is ${defaultValue})`,
  };
}

/**
 * The limits card: each limit in force and where it comes from, from the stored override (so an
 * override equal to its default still reads as an override, and the form keeps it when saved as it is).
 */
export function gatewayLimitsPanel(
  facts: GatewayLimitsFacts,
  posted?: { form: GatewayLimitsForm; errors: Record<string, string> },
): GatewayLimitsPanel {
  const { override, defaults } = facts;
  const rate = line(override.ratePerSecond, defaults.ratePerSecond, 'requests per second');
  const concurrency = line(override.concurrency, defaults.concurrency, 'requests in flight');
  const errors = posted?.errors ?? {};
  return {
    rate,
    concurrency,
    overridden: rate.source === 'override' || concurrency.source === 'override',
    form: posted?.form ?? {
      ratePerSecond: override.ratePerSecond === null ? '' : String(override.ratePerSecond),
      concurrency: override.concurrency === null ? '' : String(override.concurrency),
    },
    errors,
    hasErrors: Object.keys(errors).length > 0,
    ranges: { rate: { ...GATEWAY_RATE_RANGE }, concurrency: { ...GATEWAY_CONCURRENCY_RANGE } },
  };
}

const str = (value: unknown): string => (typeof value === 'string' ? value.trim() : '');

/** What was typed, to show the form again with its messages. */
export function submittedGatewayLimitsForm(body: PostedGatewayLimitsForm): GatewayLimitsForm {
  return { ratePerSecond: str(body.ratePerSecond), concurrency: str(body.concurrency) };
}

/**
 * A field as a number: absent or blank is null (the default); digits are the number; anything else
 * (a fraction, a word, a list) is NaN, which the service refuses with the field's message.
 */
function limit(value: unknown): number | null {
  if (value === undefined) return null;
  if (typeof value !== 'string') return NaN;
  const text = value.trim();
  if (text === '') return null;
  return /^\d+$/.test(text) ? Number(text) : NaN;
}

/**
 * What the form asks GatewayThrottleService.setOverride for (the PUT route's service and checks):
 * both fields are sent, a blank one restores its default; "Use the defaults" restores both.
 */
export function gatewayLimitsChange(body: PostedGatewayLimitsForm): LimitsChange {
  if (str(body.useDefaults) !== '') return { ratePerSecond: null, concurrency: null };
  return { ratePerSecond: limit(body.ratePerSecond), concurrency: limit(body.concurrency) };
}

/** The message after a change: the limits now in force, in words. */
export function gatewayLimitsFlash(orgName: string, facts: GatewayLimitsFacts): FlashMessage {
  const panel = gatewayLimitsPanel(facts);
  return {
    level: 'success',
    text: `Gateway limits of ${orgName}: ${panel.rate.text}, ${panel.concurrency.text}. Every instance applies them within about a second.`,
  };
}
