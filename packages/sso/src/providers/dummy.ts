import { validatePluginConfig, type ConfigField } from '@plugboard/sdk';
import { SsoError } from '../errors';
import { SsoProvider } from '../provider';
import { escapeHtml } from '../secure';
import type {
  AuthView,
  Identity,
  PipelineHelper,
  PipelineRequest,
  PipelineState,
  ViewOutcome,
} from '../types';
import { SSO_VERSION } from '../version';

export interface DummyConfig extends Record<string, unknown> {
  allow: boolean;
  emailVerified: boolean;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function formPage(
  helper: PipelineHelper,
  values: { email?: string; name?: string; problem?: string },
): string {
  const problem =
    values.problem === undefined
      ? ''
      : `<p class="problem" role="alert">${escapeHtml(values.problem)}</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Development sign-in</title>
<style>
body { font: 16px/1.4 system-ui, sans-serif; max-width: 26rem; margin: 3rem auto; padding: 0 1rem; }
label { display: block; margin: 1rem 0 .25rem; }
input[type=email], input[type=text] { width: 100%; padding: .4rem; box-sizing: border-box; }
.warning { background: #fff3cd; padding: .5rem .75rem; }
.problem { color: #a40000; }
</style>
</head>
<body>
<h1>Development sign-in</h1>
<p class="warning">This server signs in whoever types an address here. Never use it in production.</p>
${problem}
<form method="post" action="${escapeHtml(helper.callbackUrl)}">
<input type="hidden" name="state" value="${escapeHtml(helper.state)}">
<label for="email">E-mail address</label>
<input id="email" name="email" type="email" required autocomplete="email" value="${escapeHtml(values.email ?? '')}">
<label for="name">Name (optional)</label>
<input id="name" name="name" type="text" autocomplete="name" value="${escapeHtml(values.name ?? '')}">
<p><button type="submit">Sign in</button></p>
</form>
</body>
</html>
`;
}

/** The one page: an e-mail address and a name, posted back to the callback. */
class DummyLoginView implements AuthView {
  readonly name = 'dummy.login';

  async dispatch(request: PipelineRequest, helper: PipelineHelper): Promise<ViewOutcome> {
    if (request.method !== 'POST') return helper.render(formPage(helper, {}));
    const email = (request.body.get('email') ?? '').trim();
    const name = (request.body.get('name') ?? '').trim().slice(0, 200);
    if (email.length > 254 || !EMAIL.test(email)) {
      return helper.render(
        formPage(helper, { email: email.slice(0, 254), name, problem: 'Enter an e-mail address.' }),
        { status: 400 },
      );
    }
    helper.bindState('email', email);
    if (name !== '') helper.bindState('name', name);
    return helper.nextStep();
  }
}

/**
 * A one-page provider for development and tests: whoever types an e-mail
 * address is signed in as that address. It refuses to be configured unless
 * `allow: true` is set (`PB_SSO_PROVIDER_NOT_ALLOWED`); the relay gates it
 * further.
 */
export class DummyProvider extends SsoProvider<DummyConfig> {
  readonly slug = 'dummy';
  readonly title = 'Development sign-in (dummy)';
  readonly version = SSO_VERSION;
  override readonly description =
    'Signs in anyone with the e-mail address they type. For development and tests only.';

  override configFields(): ConfigField[] {
    return [
      {
        name: 'allow',
        label: 'Allow this development-only provider',
        type: 'bool',
        default: false,
        help: 'Must be true: anyone who reaches the page can sign in as anyone.',
      },
      {
        name: 'emailVerified',
        label: 'Report e-mail addresses as verified',
        type: 'bool',
        default: true,
        help: 'Nothing is verified; this only decides what the identity says.',
      },
    ];
  }

  protected override checkConfig(config: Readonly<DummyConfig>): string[] {
    return config.allow
      ? []
      : ['allow must be true: the dummy provider signs in anyone, for development and tests only'];
  }

  override configure(config: Record<string, unknown>): this {
    if (validatePluginConfig(this.configFields(), config).config.allow !== true) {
      throw new SsoError('PB_SSO_PROVIDER_NOT_ALLOWED', {
        message:
          'SSO provider dummy: refused without allow: true (it signs in anyone; for development and tests only)',
      });
    }
    return super.configure(config);
  }

  getAuthPipeline(): AuthView[] {
    // Reading the config here makes an unconfigured instance fail loudly.
    void this.config;
    return [new DummyLoginView()];
  }

  async buildIdentity(state: PipelineState): Promise<Identity> {
    const email = state.email;
    if (typeof email !== 'string') {
      throw new SsoError('PB_SSO_IDENTITY_INVALID', {
        message: 'SSO provider dummy: no e-mail bound',
      });
    }
    return {
      id: email.toLowerCase(),
      email,
      ...(typeof state.name === 'string' ? { name: state.name } : {}),
      emailVerified: this.config.emailVerified,
      data: {},
    };
  }
}
