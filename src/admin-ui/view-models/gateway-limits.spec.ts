import {
  gatewayLimitsChange,
  gatewayLimitsFlash,
  gatewayLimitsPanel,
  submittedGatewayLimitsForm,
} from './gateway-limits';

const defaults = { ratePerSecond: 20, concurrency: 10 };
const none = { ratePerSecond: null, concurrency: null };

describe('gateway limits card', () => {
  it('says the defaults come from config, and leaves the form blank for them', () => {
    const sut = gatewayLimitsPanel({ override: none, defaults });
    expect(sut).toMatchObject({
      rate: {
        value: 20,
        default: 20,
        source: 'default',
        text: '20 requests per second (default, from config)',
      },
      concurrency: { value: 10, source: 'default', text: '10 requests in flight (default, from config)' },
      overridden: false,
      form: { ratePerSecond: '', concurrency: '' },
      hasErrors: false,
      ranges: { rate: { min: 1, max: 10_000 }, concurrency: { min: 1, max: 1_000 } },
    });
  });

  it('names an override with its default, each limit on its own', () => {
    const sut = gatewayLimitsPanel({ override: { ratePerSecond: 50, concurrency: null }, defaults });
    expect(sut.rate).toMatchObject({
      source: 'override',
      text: '50 requests per second (override; the default is 20)',
    });
    expect(sut.concurrency.source).toBe('default');
    expect(sut.overridden).toBe(true);
    expect(sut.form).toEqual({ ratePerSecond: '50', concurrency: '' });
  });

  it('reads an override equal to its default as an override, and keeps it in the form', () => {
    const sut = gatewayLimitsPanel({ override: { ratePerSecond: 20, concurrency: null }, defaults });
    expect(sut.rate).toMatchObject({
      value: 20,
      default: 20,
      source: 'override',
      text: '20 requests per second (override, equal to the default)',
    });
    expect(sut.concurrency).toMatchObject({ value: 10, source: 'default' });
    expect(sut.overridden).toBe(true);
    // Saved as it is, the form sends 20 again: the override stays (a blank field would clear it).
    expect(sut.form).toEqual({ ratePerSecond: '20', concurrency: '' });
    expect(gatewayLimitsChange(sut.form)).toEqual({ ratePerSecond: 20, concurrency: null });
  });

  it('shows a form sent back as it was typed, with its messages', () => {
    const sut = gatewayLimitsPanel(
      { override: none, defaults },
      { form: { ratePerSecond: 'lots', concurrency: '3' }, errors: { ratePerSecond: 'bad' } },
    );
    expect(sut).toMatchObject({
      form: { ratePerSecond: 'lots', concurrency: '3' },
      errors: { ratePerSecond: 'bad' },
      hasErrors: true,
    });
  });

  it('turns the form into the service’s change: blank is the default, anything not a whole number is NaN', () => {
    expect(gatewayLimitsChange({ ratePerSecond: ' 50 ', concurrency: '' })).toEqual({
      ratePerSecond: 50,
      concurrency: null,
    });
    expect(gatewayLimitsChange({ ratePerSecond: '1.5', concurrency: '-2' })).toEqual({
      ratePerSecond: NaN,
      concurrency: NaN,
    });
    expect(gatewayLimitsChange({ ratePerSecond: ['7'], concurrency: 'abc' })).toEqual({
      ratePerSecond: NaN,
      concurrency: NaN,
    });
    expect(gatewayLimitsChange({})).toEqual({ ratePerSecond: null, concurrency: null });
    expect(gatewayLimitsChange({ ratePerSecond: '50', concurrency: '5', useDefaults: '1' })).toEqual({
      ratePerSecond: null,
      concurrency: null,
    });
    expect(submittedGatewayLimitsForm({ ratePerSecond: ' 9 ', concurrency: ['x'] })).toEqual({
      ratePerSecond: '9',
      concurrency: '',
    });
  });

  it('says what is in force after a change', () => {
    expect(
      gatewayLimitsFlash('Mercy', { override: { ratePerSecond: 5, concurrency: null }, defaults }),
    ).toEqual({
      level: 'success',
      text: expect.stringContaining(
        'Gateway limits of Mercy: 5 requests per second (override; the default is 20), 10 requests in flight (default, from config).',
      ),
    });
  });
});
