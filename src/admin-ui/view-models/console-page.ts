import {
  ATTENTION_STATES,
  CONNECTION_STATES,
  type ConnectionListItem,
  type ConnectionListQuery,
  type ConnectionState,
} from 'src/connections/connections.read-model';

import { CONSOLE_SORTS, type ConsoleQueryDto, type ConsoleSort } from '../dto/console-query.dto';
import { ConnectionRow, StateBadge, stateBadge, toConnectionRow } from './connection-row';
import type { Viewer } from './page';

/** Organizations per console page. */
export const CONSOLE_PAGE_SIZE = 50;

/** The root admin console (`GET /admin`): every organization with its connection state. */
export interface ConsolePage extends Viewer {
  title: string;
  rows: ConnectionRow[];
  /** Organizations matching the filter and search (all pages). */
  total: number;
  /** The filter, search, sort and page, as asked (the search form keeps them). */
  query: ConsoleQueryDto;
  /** One link per state with its count; `current` marks the state filtered on. */
  summary: { state: ConnectionState; badge: StateBadge; count: number; href: string; current: boolean }[];
  /** "Need attention": expiring, expired and error together. */
  attention: { count: number; href: string };
  allHref: string;
  sorts: { sort: ConsoleSort; href: string; current: boolean }[];
  previous: string | null;
  next: string | null;
  /** "51–100 of 120", or "" when nothing matches. */
  pageInfo: string;
}

/** A console URL keeping the filter, search and sort (empty values and page 1 left out). */
export function consoleLink(query: Partial<ConsoleQueryDto>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== '' && !(key === 'page' && value === 1)) {
      params.set(key, String(value));
    }
  }
  const text = params.toString();
  return text ? `/admin?${text}` : '/admin';
}

/** What to ask the connections read model for the console's `query`. */
export function consoleListQuery(query: ConsoleQueryDto): ConnectionListQuery {
  const page = query.page ?? 1;
  return {
    state: query.state,
    search: query.q,
    sort: query.sort,
    limit: CONSOLE_PAGE_SIZE,
    offset: (page - 1) * CONSOLE_PAGE_SIZE,
  };
}

/**
 * The console's view model: pure, from the counts by state and one page of the list, both read at
 * the same moment (ConnectionsReadModel.counts and .list).
 */
export function consolePage(
  viewer: Viewer,
  query: ConsoleQueryDto,
  counts: Record<ConnectionState, number>,
  list: { items: ConnectionListItem[]; total: number },
): ConsolePage {
  const page = query.page ?? 1;
  const { total } = list;
  // Changing the filter or the sort starts again at the first page.
  const link = (changes: Partial<ConsoleQueryDto>) => consoleLink({ ...query, page: undefined, ...changes });
  return {
    title: 'Organizations',
    ...viewer,
    rows: list.items.map(toConnectionRow),
    total,
    query,
    summary: CONNECTION_STATES.map((state) => ({
      state,
      badge: stateBadge(state),
      count: counts[state],
      href: link({ state }),
      current: query.state === state,
    })),
    attention: {
      count: ATTENTION_STATES.reduce((n, s) => n + counts[s], 0),
      href: link({ state: 'attention' }),
    },
    allHref: link({ state: undefined }),
    sorts: CONSOLE_SORTS.map((sort) => ({
      sort,
      href: link({ sort }),
      current: (query.sort ?? 'name') === sort,
    })),
    previous: page > 1 ? consoleLink({ ...query, page: page - 1 }) : null,
    next: page * CONSOLE_PAGE_SIZE < total ? consoleLink({ ...query, page: page + 1 }) : null,
    pageInfo:
      total === 0
        ? ''
        : `${(page - 1) * CONSOLE_PAGE_SIZE + 1}–${Math.min(page * CONSOLE_PAGE_SIZE, total)} of ${total}`,
  };
}
