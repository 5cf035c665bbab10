import {
  defined,
  ident,
  invalid,
  record,
  success,
  text,
  type JsonObject,
  type ResourceHandler,
} from './common';

/**
 * `data.installation.code` is a one-time OAuth grant code: whoever holds it
 * can exchange it for the installation's API token. Notifications are stored
 * and handed to third-party plugins, so the code is cut out of `raw` too.
 */
function withoutGrantCode(data: JsonObject, installation: JsonObject): JsonObject {
  const { code: _code, ...rest } = installation;
  return { ...data, installation: rest };
}

export const installationHandler: ResourceHandler = {
  actions: ['created', 'deleted'],
  parse(data, envelope) {
    const { resource, action } = envelope;
    const installation = record(data.installation);
    if (!installation) return invalid(resource, action, 'data.installation missing');
    const uuid = ident(installation.uuid) ?? envelope.installationUuid;
    if (uuid === undefined) return invalid(resource, action, 'data.installation.uuid missing');

    const app = record(installation.app);
    const appSlug = text(app?.slug);
    const organizationSlug = text(record(installation.organization)?.slug);
    const status = text(installation.status);
    const verb = action === 'created' ? 'installed' : 'uninstalled';

    return success(envelope, {
      installation: defined({ uuid, status, appSlug, appUuid: ident(app?.uuid) }),
      organizationSlug,
      title: `Sentry integration ${appSlug ?? uuid} ${verb}${organizationSlug ? ` in ${organizationSlug}` : ''}`,
      message: status === undefined ? '' : `Installation status: ${status}`,
      dedupKey: `installation:${action}:${uuid}`,
      raw: withoutGrantCode(data, installation),
    });
  },
};
