import type { NotificationAssignee, NotificationGroup } from '../model';
import {
  count,
  defined,
  ident,
  invalid,
  readProject,
  record,
  success,
  text,
  type ResourceHandler,
} from './common';
import { organizationFromWebUrl } from './urls';

function readAssignee(value: unknown): NotificationAssignee | undefined {
  const assignee = record(value);
  const id = ident(assignee?.id);
  if (!assignee || id === undefined) return undefined;
  return defined({
    type: text(assignee.type) ?? 'user',
    id,
    name: text(assignee.name) ?? id,
    email: text(assignee.email),
  });
}

/**
 * Sentry's server emits `issue.ignored` (the subscribable event) and, for the
 * same change, `issue.archived` (the name its docs and UI use). One status
 * change is one notification, so both share a dedup identity.
 */
function dedupAction(action: string): string {
  return action === 'archived' ? 'ignored' : action;
}

export const issueHandler: ResourceHandler = {
  actions: ['created', 'resolved', 'assigned', 'ignored', 'archived', 'unresolved'],
  parse(data, envelope) {
    const issue = record(data.issue);
    if (!issue) return invalid(envelope.resource, envelope.action, 'data.issue missing');
    const id = ident(issue.id);
    if (id === undefined)
      return invalid(envelope.resource, envelope.action, 'data.issue.id missing');

    const shortId = text(issue.shortId);
    // `permalink` is null unless the issue is public; `web_url` is added by the webhook.
    const url = text(issue.web_url) ?? text(issue.permalink);
    const group = defined<NotificationGroup>({
      id,
      shortId,
      title: text(issue.title) ?? shortId ?? `Issue ${id}`,
      culprit: text(issue.culprit),
      level: text(issue.level),
      status: text(issue.status),
      substatus: text(issue.substatus),
      count: count(issue.count),
      userCount: count(issue.userCount),
      firstSeen: text(issue.firstSeen),
      lastSeen: text(issue.lastSeen),
      platform: text(issue.platform),
      type: text(issue.type),
      metadata: record(issue.metadata),
      url,
    });

    return success(envelope, {
      project: readProject(issue.project),
      group,
      organizationSlug: organizationFromWebUrl(url),
      // The top-level `assignee` is what the assignment webhook adds; the
      // serialised issue's `assignedTo` says the same in older payloads.
      assignee:
        envelope.action === 'assigned'
          ? (readAssignee(data.assignee) ?? readAssignee(issue.assignedTo))
          : undefined,
      level: group.level,
      title: group.title,
      message: group.culprit ?? '',
      url,
      links: { issue: url },
      dedupKey: `issue:${dedupAction(envelope.action)}:${id}`,
      raw: data,
    });
  },
};
