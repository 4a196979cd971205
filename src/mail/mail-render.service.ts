import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Injectable } from '@nestjs/common';
import hbs from 'hbs';

import { PROJECT_ROOT } from 'src/paths';
import { registerViewHelpers } from 'src/views/view-helpers';

type Template = (context: object) => string;

/** A rendered message body: plain text and HTML from the same context. */
export interface RenderedMail {
  text: string;
  html: string;
}

/**
 * Renders `views/mail/<name>.text.hbs` and `<name>.html.hbs` with the app's Handlebars (the helpers
 * the pages use are registered on it). HTML is escaped as on the pages; the plain-text part is not
 * HTML-escaped (an organization called "St Mary's" must not read "St Mary&#x27;s"), which is safe
 * because a mail client shows text/plain as text.
 */
@Injectable()
export class MailRenderService {
  private readonly cache = new Map<string, Template>();

  constructor() {
    // The same helpers as the pages (registering twice replaces them with the same functions).
    registerViewHelpers(hbs);
  }

  render(name: string, context: object): RenderedMail {
    return {
      text:
        this.template(`${name}.text`, { noEscape: true })(context)
          .replace(/\n{3,}/g, '\n\n')
          .trim() + '\n',
      html: this.template(`${name}.html`, {})(context),
    };
  }

  private template(file: string, options: { noEscape?: boolean }): Template {
    let template = this.cache.get(file);
    if (!template) {
      const source = readFileSync(join(PROJECT_ROOT, 'views', 'mail', `${file}.hbs`), 'utf8');
      template = hbs.handlebars.compile(source, { strict: false, ...options });
      this.cache.set(file, template);
    }
    return template;
  }
}
