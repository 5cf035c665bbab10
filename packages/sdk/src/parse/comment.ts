import {
  defined,
  ident,
  invalid,
  projectFromSlug,
  shortHash,
  success,
  text,
  type ResourceHandler,
} from './common';

const VERBS: Record<string, string> = {
  created: 'commented on',
  updated: 'edited a comment on',
  deleted: 'deleted a comment on',
};

export const commentHandler: ResourceHandler = {
  actions: ['created', 'updated', 'deleted'],
  parse(data, envelope) {
    const { resource, action } = envelope;
    const id = ident(data.comment_id);
    if (id === undefined) return invalid(resource, action, 'data.comment_id missing');
    const issueId = ident(data.issue_id);
    if (issueId === undefined) return invalid(resource, action, 'data.issue_id missing');
    const body = typeof data.comment === 'string' ? data.comment : '';

    // Each edit of one comment is new content under the same comment id, so an
    // `updated` key includes the text; otherwise a second edit would be taken
    // for a redelivery of the first and dropped.
    const dedupKey =
      action === 'updated'
        ? `comment:${action}:${id}:${shortHash(body)}`
        : `comment:${action}:${id}`;

    return success(envelope, {
      project: projectFromSlug(text(data.project_slug)),
      comment: defined({ id, issueId, text: body, timestamp: text(data.timestamp) }),
      title: `${envelope.actor?.name ?? 'Someone'} ${VERBS[action] ?? action} issue ${issueId}`,
      message: body,
      dedupKey,
      raw: data,
    });
  },
};
