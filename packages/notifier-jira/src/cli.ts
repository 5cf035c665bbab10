import { JiraClient } from './client';
import type { ApiVersion, Deployment } from './convert';
import { describeFields } from './meta';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

const USAGE = `usage: plugboard-jira fields --url <base URL> --project <KEY> --issue-type <name|id>
                      [--deployment cloud|server] [--email <e-mail>] [--username <user>]
                      [--api-version 2|3] [--timeout-ms <ms>] [--json]

Prints the fields JIRA offers when creating an issue of that type: id, name,
type, whether required, and the allowed values, to write the notifier's
\`fields\` setting. The token is read from the JIRA_TOKEN environment variable
(Cloud: an API token, with --email; Server/Data Center: a personal access token).
Server/Data Center sites without tokens: --username, with the password in the
JIRA_PASSWORD environment variable (sent as basic auth).
`;

function parseArgs(argv: string[]): { command?: string; flags: Map<string, string | true> } {
  const flags = new Map<string, string | true>();
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      if (eq > 0) flags.set(arg.slice(2, eq), arg.slice(eq + 1));
      else {
        const next = argv[i + 1];
        if (next !== undefined && !next.startsWith('--')) {
          flags.set(arg.slice(2), next);
          i++;
        } else flags.set(arg.slice(2), true);
      }
    } else if (command === undefined) command = arg;
  }
  return { ...(command !== undefined ? { command } : {}), flags };
}

/** `plugboard-jira fields ...`; resolves with the exit code. */
export async function main(
  argv: string[],
  io: CliIo = {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    env: process.env,
  },
): Promise<number> {
  const { command, flags } = parseArgs(argv);
  if (command !== 'fields' || flags.has('help')) {
    (command === undefined || flags.has('help') ? io.out : io.err)(USAGE);
    return command === undefined || flags.has('help') ? 0 : 2;
  }
  const get = (name: string): string | undefined => {
    const v = flags.get(name);
    return typeof v === 'string' ? v : undefined;
  };
  const url = get('url');
  const project = get('project');
  const issueType = get('issue-type');
  const deployment = (get('deployment') ?? 'cloud') as Deployment;
  const email = get('email');
  const username = get('username');
  const basic = username !== undefined;
  const token = basic ? undefined : io.env.JIRA_TOKEN;
  const password = basic ? io.env.JIRA_PASSWORD : undefined;
  const missing = [
    !url && '--url',
    !project && '--project',
    !issueType && '--issue-type',
    !basic && !token && 'JIRA_TOKEN (environment)',
    basic && !password && 'JIRA_PASSWORD (environment, with --username)',
    deployment === 'cloud' && !email && '--email (Cloud)',
  ].filter(Boolean);
  if (deployment !== 'cloud' && deployment !== 'server') {
    io.err(`--deployment must be cloud or server\n`);
    return 2;
  }
  if (basic && deployment === 'cloud') {
    io.err(
      '--username is for Server/Data Center basic auth (--deployment server); Cloud uses --email and JIRA_TOKEN\n',
    );
    return 2;
  }
  if (missing.length > 0) {
    io.err(`missing: ${missing.join(', ')}\n\n${USAGE}`);
    return 2;
  }
  const version = get('api-version') ?? (deployment === 'server' ? '2' : '3');
  if (version !== '2' && version !== '3') {
    io.err('--api-version must be 2 or 3\n');
    return 2;
  }
  const timeoutMs = Number(get('timeout-ms') ?? 15_000);
  const client = new JiraClient({
    baseUrl: url as string,
    deployment,
    ...(email ? { email } : {}),
    ...(basic ? { basic: { username, password: password as string } } : { token: token as string }),
    apiVersion: Number(version) as ApiVersion,
    timeoutMs: Number.isFinite(timeoutMs) && timeoutMs > 0 ? timeoutMs : 15_000,
    signal: AbortSignal.timeout(60_000),
  });
  try {
    const meta = await client.createMeta(project as string, issueType as string);
    io.out(flags.has('json') ? `${JSON.stringify(meta, null, 2)}\n` : describeFields(meta));
    return 0;
  } catch (err) {
    io.err(`${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
