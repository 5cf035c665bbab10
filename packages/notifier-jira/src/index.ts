// The public API of @plugboard/notifier-jira. Keep this a curated list of re-exports.
export { JiraNotifier, clearMetadataCache, subjectOf } from './notifier';
export { JIRA_NOTIFIER_VERSION } from './version';
export { JiraClient, jiraErrorText, parseRetryAfter } from './client';
export { convertValue, kindOf, isSettable, CONVERTERS } from './convert';
export { describeFields, readFields, readLegacyCreateMeta } from './meta';
export { resolveFields } from './fields';
export { render, TEMPLATE_ROOTS } from './template';
export { buildDescription, buildComment } from './description';
export type { JiraConfig, OnRepeat } from './config';
export type { ApiVersion, Deployment, ConvertOptions, Converted, ValueKind } from './convert';
export type { CreateMeta, FieldMeta, FieldSchema, IssueTypeRef } from './meta';
export type { Subject } from './notifier';
export { main as jiraCli } from './cli';
export type { CliIo } from './cli';
