import {
  escapeHtml,
  SsoProvider,
  type AuthView,
  type Identity,
  type PipelineHelper,
  type PipelineRequest,
  type PipelineState,
  type ViewOutcome,
} from '@plugboard/sso';

/**
 * Step 1 of the test pipeline: a form on start; on the callback, `user`
 * moves on, `again` shows the form once more (the step stays), `fail` ends
 * the flow with a message, `throw` is a bug.
 */
class FormView implements AuthView {
  readonly name = 'steps.form';

  async dispatch(request: PipelineRequest, helper: PipelineHelper): Promise<ViewOutcome> {
    const form = `<form method="post" action="${escapeHtml(helper.callbackUrl)}">
<input type="hidden" name="state" value="${escapeHtml(helper.state)}"><input name="user"></form>`;
    if (request.phase === 'start') return helper.render(form);
    const p = request.params;
    if (p.has('fail')) return helper.error('The test view said no.');
    if (p.has('throw')) throw new Error('a bug in the view');
    if (p.has('bogus')) return { kind: 'maybe' } as unknown as ViewOutcome;
    if (p.has('again')) {
      helper.bindState('visits', (helper.fetchState<number>('visits') ?? 0) + 1);
      return helper.render(form, { status: 200 });
    }
    const user = p.get('user');
    if (user === null) return helper.redirect('https://idp.example.test/login');
    helper.bindState('user', user);
    helper.bindState('order', ['form']);
    return helper.nextStep();
  }
}

/** Step 2: runs right after step 1 on the same request; reads what step 1 bound. */
class CheckView implements AuthView {
  readonly name = 'steps.check';

  async dispatch(_request: PipelineRequest, helper: PipelineHelper): Promise<ViewOutcome> {
    const user = helper.fetchState<string>('user');
    const order = helper.fetchState<string[]>('order') ?? [];
    helper.bindState('order', [...order, 'check']);
    helper.bindState('email', `${user ?? 'nobody'}@example.com`);
    return helper.nextStep();
  }
}

/** A two-step provider written the way a third party would. */
export class StepsProvider extends SsoProvider {
  readonly slug: string = 'steps';
  readonly title = 'Steps';
  readonly version = '1.0.0';

  getAuthPipeline(): AuthView[] {
    return [new FormView(), new CheckView()];
  }

  async buildIdentity(state: PipelineState): Promise<Identity> {
    return {
      id: String(state.user),
      email: String(state.email),
      data: { order: state.order, visits: state.visits ?? 0 },
    };
  }
}

/** The same provider after a deploy that added a step. */
export class ChangedStepsProvider extends StepsProvider {
  override getAuthPipeline(): AuthView[] {
    const [form, check] = super.getAuthPipeline() as [AuthView, AuthView];
    return [form, { name: 'steps.mfa', dispatch: async (_r, h) => h.nextStep() }, check];
  }
}

/** A provider whose identity provider POSTs back from its own site. */
export class PostingStepsProvider extends StepsProvider {
  override callbackMethod(): 'query' | 'form_post' {
    return 'form_post';
  }
}

/** A provider whose buildIdentity forgets the e-mail address. */
export class NoEmailProvider extends StepsProvider {
  override async buildIdentity(state: PipelineState): Promise<Identity> {
    return { id: String(state.user), email: '' };
  }
}

export function configured<P extends SsoProvider>(
  provider: P,
  config: Record<string, unknown> = {},
): P {
  return provider.configure(config);
}
