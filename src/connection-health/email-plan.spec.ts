import { ConnectionState } from 'src/connections/connections.types';

import { digestSubject, nextDigestAt, planDelivery } from './email-plan';

describe('email planning', () => {
  const options = { burstWindowSeconds: 120, digestHourUtc: 7 };
  const at = new Date('2026-03-01T10:15:00Z');

  it('nextDigestAt: the next hour:00 UTC strictly after', () => {
    expect(nextDigestAt(at, 7).toISOString()).toBe('2026-03-02T07:00:00.000Z');
    expect(nextDigestAt(at, 11).toISOString()).toBe('2026-03-01T11:00:00.000Z');
    expect(nextDigestAt(new Date('2026-03-01T07:00:00Z'), 7).toISOString()).toBe('2026-03-02T07:00:00.000Z');
    expect(nextDigestAt(new Date('2026-12-31T23:30:00Z'), 0).toISOString()).toBe('2027-01-01T00:00:00.000Z');
  });

  it('org admins: immediate at once; root admins: immediate folded over the burst window', () => {
    expect(planDelivery({ root: false, mode: 'immediate' }, at, options)).toEqual({
      mode: 'immediate',
      dueAt: at,
    });
    expect(planDelivery({ root: true, mode: 'immediate' }, at, options)).toEqual({
      mode: 'burst',
      dueAt: new Date('2026-03-01T10:17:00Z'),
    });
  });

  it('digest waits for the digest hour; off sends nothing', () => {
    expect(planDelivery({ root: false, mode: 'digest' }, at, options)).toEqual({
      mode: 'digest',
      dueAt: new Date('2026-03-02T07:00:00Z'),
    });
    expect(planDelivery({ root: true, mode: 'off' }, at, options)).toBeNull();
  });

  it('digest subjects count the states, most urgent first', () => {
    const states = [
      ...Array<ConnectionState>(497).fill(ConnectionState.Expiring),
      ConnectionState.Expired,
      ConnectionState.Expired,
      ConnectionState.Connected,
    ];
    expect(digestSubject(states, false)).toBe('Connection changes: 2 expired, 497 expiring, 1 restored');
    expect(digestSubject([ConnectionState.Error], true)).toBe('Daily digest: 1 failing');
  });
});
