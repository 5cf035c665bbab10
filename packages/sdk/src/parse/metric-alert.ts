import type { NotificationMetricAlert, SentryLevel } from '../model';
import {
  defined,
  ident,
  invalid,
  projectFromSlug,
  record,
  stringList,
  success,
  text,
  type ResourceHandler,
} from './common';
import { organizationFromWebUrl } from './urls';

// A metric alert has no event, so its level says how loud the notification
// should be: `fatal` is kept for crashes, a threshold breach is an `error`.
const LEVELS: Record<string, SentryLevel> = {
  critical: 'error',
  warning: 'warning',
  resolved: 'info',
};

export const metricAlertHandler: ResourceHandler = {
  actions: ['critical', 'warning', 'resolved'],
  parse(data, envelope) {
    const { resource, action } = envelope;
    const incident = record(data.metric_alert);
    if (!incident) return invalid(resource, action, 'data.metric_alert missing');
    const id = ident(incident.id);
    if (id === undefined) return invalid(resource, action, 'data.metric_alert.id missing');

    const rule = record(incident.alert_rule);
    const ruleName = text(rule?.name);
    const url = text(data.web_url);
    const description = text(data.description_text);
    const title =
      text(data.description_title) ?? ruleName ?? text(incident.title) ?? `Metric alert ${id}`;
    const metricAlert = defined<NotificationMetricAlert>({
      id,
      identifier: ident(incident.identifier),
      title: text(incident.title) ?? ruleName ?? title,
      description,
      status: action,
      url,
      alertRuleName: ruleName,
    });
    const projects = stringList(incident.projects);
    const started = text(incident.date_started) ?? text(incident.date_detected);

    return success(envelope, {
      project: projectFromSlug(projects[0] ?? stringList(rule?.projects)[0]),
      metricAlert,
      organizationSlug: organizationFromWebUrl(url),
      environment: text(rule?.environment),
      level: LEVELS[action],
      title,
      message: description ?? '',
      url,
      links: { alert: url },
      dedupKey: ['metric_alert', action, id, started].filter((p) => p !== undefined).join(':'),
      raw: data,
    });
  },
};
