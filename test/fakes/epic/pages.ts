import { escapeHtml } from './http';

function layout(title: string, body: string): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
    `<style>body{font-family:sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}` +
    `label{display:block;margin:.4rem 0}button{margin:1rem .5rem 0 0;padding:.4rem 1rem}` +
    `.fake{color:#a33;font-size:.8rem}</style></head>` +
    `<body><p class="fake">Fake Epic (development aid, not Epic)</p>${body}</body></html>`
  );
}

/**
 * The page Epic shows when the client or redirect URI cannot be trusted, so no redirect is possible
 * (RFC 6749 §4.1.2.1). Epic's wording (docs/epic-and-smart.md §12); the fake adds the reason.
 */
export function errorPage(reason: string): string {
  return layout(
    'Error',
    `<h1>Something went wrong trying to authorize the client.</h1>` +
      `<p>Please try logging out and back in again.</p><p data-reason>${escapeHtml(reason)}</p>`,
  );
}

export interface ConsentChoice {
  value: string;
  label: string;
}

/** The login-and-consent page shown to real browsers when the `consentPage` switch is on. */
export function consentPage(args: {
  action: string;
  requestId: string;
  clientId: string;
  scopes: string[];
  users: ConsentChoice[];
}): string {
  const users = args.users
    .map(
      (u, i) =>
        `<label><input type="radio" name="user" value="${escapeHtml(u.value)}"${i === 0 ? ' checked' : ''}> ` +
        `${escapeHtml(u.label)}</label>`,
    )
    .join('');
  return layout(
    'Sign in',
    `<h1>Sign in and allow access</h1>` +
      `<p>App <code>${escapeHtml(args.clientId)}</code> asks for: <code>${escapeHtml(args.scopes.join(' '))}</code></p>` +
      `<form method="post" action="${escapeHtml(args.action)}">` +
      `<input type="hidden" name="request" value="${escapeHtml(args.requestId)}">${users}` +
      `<button name="decision" value="approve">Allow</button><button name="decision" value="deny">Deny</button>` +
      `</form>`,
  );
}
