import { ConnectionState } from 'src/connections/connections.types';
import { describeTransition, humanDuration } from './notification-messages';

const now = new Date('2026-11-23T12:00:00.000Z');
const base = 'https://connect.example.org';
const snapshot = (
  state: ConnectionState,
  extra: { endsAt?: Date | null; lastError?: string | null } = {},
) => ({
  organizationId: 'org-1',
  organizationName: "St Mary's",
  state,
  endsAt: extra.endsAt ?? null,
  lastError: extra.lastError ?? null,
});

describe('humanDuration', () => {
  it('rounds down to minutes, hours or days, never zero', () => {
    expect(
      [0, 59_000, 60_000, 25 * 60_000, 119 * 60_000, 3 * 3600_000, 47 * 3600_000, 72 * 3600_000].map(
        humanDuration,
      ),
    ).toEqual([
      '1 minute',
      '1 minute',
      '1 minute',
      '25 minutes',
      '119 minutes',
      '3 hours',
      '47 hours',
      '3 days',
    ]);
  });
});

describe('describeTransition', () => {
  it('warns of an expiring connection with the time left and the re-connect link', () => {
    const content = describeTransition(
      snapshot(ConnectionState.Expiring, { endsAt: new Date(now.getTime() + 25 * 60_000) }),
      ConnectionState.Connected,
      now,
      base,
    );
    expect(content).toEqual({
      kind: 'attention',
      title: "Epic connection expires in 25 minutes: St Mary's",
      message: expect.stringContaining('expires in 25 minutes (2026-11-23T12:25:00Z)'),
      link: 'https://connect.example.org/connect_epic/org-1',
      text: "⚠ St Mary's: Epic connection expires in 25 minutes. Re-connect: https://connect.example.org/connect_epic/org-1",
    });
  });

  it('says an expired connection must be re-connected, with the reason', () => {
    const content = describeTransition(
      snapshot(ConnectionState.Expired, { lastError: 'Epic rejected the refresh token (invalid_grant).' }),
      ConnectionState.Connected,
      now,
      base,
    );
    expect(content?.message).toBe(
      'Epic connection has expired, please re-connect. Reason: Epic rejected the refresh token (invalid_grant).',
    );
    expect(content?.link).toBe('https://connect.example.org/connect_epic/org-1');
  });

  it('reports an error with the organization page link', () => {
    const content = describeTransition(
      snapshot(ConnectionState.Error, { lastError: 'HTTP 503' }),
      null,
      now,
      base,
    );
    expect(content).toMatchObject({
      kind: 'attention',
      link: 'https://connect.example.org/admin/organizations/org-1',
    });
    expect(content?.message).toContain('Reason: HTTP 503');
  });

  it('sends a resolved notice only after a state that needed attention', () => {
    for (const previous of [ConnectionState.Expiring, ConnectionState.Expired, ConnectionState.Error]) {
      expect(describeTransition(snapshot(ConnectionState.Connected), previous, now, base)?.kind).toBe(
        'resolved',
      );
    }
    for (const previous of [null, ConnectionState.NotConnected, ConnectionState.NotConfigured]) {
      expect(describeTransition(snapshot(ConnectionState.Connected), previous, now, base)).toBeNull();
    }
  });

  it('says nothing about a connection that is not configured or was disconnected', () => {
    expect(
      describeTransition(snapshot(ConnectionState.NotConnected), ConnectionState.Expired, now, base),
    ).toBeNull();
    expect(
      describeTransition(snapshot(ConnectionState.NotConfigured), ConnectionState.Connected, now, base),
    ).toBeNull();
  });

  it("escapes Slack's control characters in the chat text", () => {
    const content = describeTransition(
      { ...snapshot(ConnectionState.Expired), organizationName: '<!channel> & co' },
      ConnectionState.Connected,
      now,
      base,
    );
    expect(content?.text).toContain('&lt;!channel&gt; &amp; co');
    expect(content?.title).toContain('<!channel> & co'); // the page escapes it when rendering
  });

  it('names a server that is not Epic: by the name its administrator gave, else as the EHR', () => {
    const named = describeTransition(
      {
        ...snapshot(ConnectionState.Error, { lastError: 'HTTP 503' }),
        server: { name: 'Cerner <!here>', noun: 'Cerner <!here>' },
      },
      ConnectionState.Connected,
      now,
      base,
    );
    expect(named).toMatchObject({
      title: "Cerner <!here> connection error: St Mary's",
      message: expect.stringMatching(
        /^Calls to Cerner <!here> are failing; .* when Cerner <!here> answers again\./,
      ),
    });
    expect(named?.text).toContain('Cerner &lt;!here&gt; connection error.');
    const generic = describeTransition(
      { ...snapshot(ConnectionState.Expired), server: { name: 'the EHR', noun: 'EHR' } },
      ConnectionState.Connected,
      now,
      base,
    );
    expect(generic).toMatchObject({
      title: "EHR connection expired: St Mary's",
      message: 'EHR connection has expired, please re-connect.',
    });
    expect(JSON.stringify([named, generic])).not.toContain('Epic');
  });
});
