import { refreshDueAt } from './refresh-margin';

const issued = new Date('2026-12-07T00:00:00Z');
const after = (seconds: number) => new Date(issued.getTime() + seconds * 1000);
const dueAfter = (lifetime: number, margin = 300, issuedAt: Date | null = issued) =>
  (refreshDueAt(after(lifetime), issuedAt, margin).getTime() - issued.getTime()) / 1000;

describe('refreshDueAt', () => {
  it('renews an hour-long token the margin before it ends', () => {
    expect(dueAfter(3600)).toBe(3300);
  });

  it('uses a short-lived token for half its life before renewing it', () => {
    expect(dueAfter(30)).toBe(15);
    expect(dueAfter(300)).toBe(150);
    expect(dueAfter(601)).toBe(301);
  });

  it('applies the whole margin when the issue time is unknown', () => {
    expect(dueAfter(30, 300, null)).toBe(-270);
  });

  it('a token issued "after" it expires (clock oddities) is due at once, not in the future', () => {
    expect(refreshDueAt(issued, after(10), 300).getTime()).toBe(issued.getTime());
  });
});
