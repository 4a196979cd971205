import type { AddressInfo } from 'node:net';

import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

import { testSecret } from 'test/factories/secrets';

/** A message the fake SMTP server accepted: the envelope, the raw source and the parsed message. */
export interface CapturedMail {
  from: string;
  to: string[];
  raw: string;
  parsed: ParsedMail;
  /** Header value by lower-case name (first occurrence, unfolded). */
  header(name: string): string | undefined;
}

/** An SMTP server on loopback (nodemailer's own `smtp-server`) that captures what it accepts and can refuse. */
export interface FakeSmtp {
  /** `smtp://user:password@127.0.0.1:<port>`: the app's SMTP_URL. */
  url: string;
  port: number;
  user: string;
  /** The login password: it must appear in no message and no log (it carries the test secret marker). */
  password: string;
  messages: CapturedMail[];
  /** Refuse the next `count` recipients (RCPT TO) with `code` (451: try again later). */
  refuseNext(count: number, code?: number): void;
  /** Refuse every recipient until called with false (the server is "down" for mail). */
  refuseAll(on: boolean): void;
  /** Answer each message's data `ms` late (a slow server); 0 for at once. */
  setDelay(ms: number): void;
  /** Messages to one recipient. */
  to(address: string): CapturedMail[];
  close(): Promise<void>;
}

export async function startFakeSmtp(): Promise<FakeSmtp> {
  const user = 'mailer';
  const password = testSecret('smtp');
  const messages: CapturedMail[] = [];
  let refusals: number[] = [];
  let refuseEverything = false;
  let delayMs = 0;
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'], // loopback only; nodemailer then logs in over the plain connection
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === user && auth.password === password) return callback(null, { user });
      return callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onRcptTo(_address, _session, callback) {
      const code = refuseEverything ? 451 : refusals.shift();
      if (!code) return callback();
      return callback(Object.assign(new Error('Mailbox unavailable, try later'), { responseCode: code }));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        simpleParser(raw)
          .then((parsed) => {
            messages.push({
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((r) => r.address),
              raw,
              parsed,
              header: (name) => {
                const value = parsed.headerLines.find((h) => h.key === name.toLowerCase())?.line;
                return value
                  ?.slice(value.indexOf(':') + 1)
                  .replace(/\r?\n[ \t]+/g, ' ')
                  .trim();
              },
            });
            setTimeout(() => callback(), delayMs);
          })
          .catch((error: Error) => callback(error));
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    port,
    user,
    password,
    messages,
    refuseNext: (count, code = 451) => {
      refusals = [...refusals, ...Array.from({ length: count }, () => code)];
    },
    refuseAll: (on) => {
      refuseEverything = on;
    },
    setDelay: (ms) => {
      delayMs = ms;
    },
    to: (address) => messages.filter((m) => m.to.some((a) => a.toLowerCase() === address.toLowerCase())),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
