import { HOUR_MS, hourlyTraffic, trafficWindowStart } from './hourly-traffic';

describe('hourlyTraffic', () => {
  const now = new Date('2026-12-07T10:42:13Z');

  it('starts 23 hours before the current hour', () => {
    expect(trafficWindowStart(now).toISOString()).toBe('2026-12-06T11:00:00.000Z');
    expect(trafficWindowStart(new Date('2026-12-07T10:00:00Z')).toISOString()).toBe(
      '2026-12-06T11:00:00.000Z',
    );
  });

  it('gives 24 hours oldest first, zeros where nothing happened', () => {
    const hours = hourlyTraffic([], now);
    expect(hours).toHaveLength(24);
    expect(hours[0].hour.toISOString()).toBe('2026-12-06T11:00:00.000Z');
    expect(hours[23].hour.toISOString()).toBe('2026-12-07T10:00:00.000Z');
    expect(hours.every((h) => h.requests === 0 && h.errors === 0)).toBe(true);
    for (let i = 1; i < 24; i++) expect(hours[i].hour.getTime() - hours[i - 1].hour.getTime()).toBe(HOUR_MS);
  });

  it('places each counted hour, and ignores hours outside the window', () => {
    const hours = hourlyTraffic(
      [
        { hour: new Date('2026-12-07T10:00:00Z'), requests: 7, errors: 2 },
        { hour: new Date('2026-12-06T11:00:00Z'), requests: 3, errors: 0 },
        { hour: new Date('2026-12-06T10:00:00Z'), requests: 99, errors: 99 }, // 24 hours ago: out
        { hour: new Date('2026-12-07T11:00:00Z'), requests: 99, errors: 99 }, // the future: out
      ],
      now,
    );
    expect(hours[23]).toMatchObject({ requests: 7, errors: 2 });
    expect(hours[0]).toMatchObject({ requests: 3, errors: 0 });
    expect(hours.reduce((sum, h) => sum + h.requests, 0)).toBe(10);
  });
});
