import { labelValues, type LabelSet } from './labels';

/**
 * Alertmanager's matcher syntax, one matcher per string:
 *
 *   project="web"   level=~"error|fatal"   tags.browser!="Chrome"   environment!~"dev.*"
 *
 * `=` equal, `!=` not equal, `=~` matches the regular expression, `!~` does
 * not. Regular expressions are anchored at both ends (`=~"web"` is
 * `^(?:web)$`), as in Alertmanager, and a leading `(?i)` makes one
 * case-insensitive. Values may be quoted (`\"` is a quote, `\\` a backslash,
 * `\n` a newline; any other backslash is kept, so `\.` reaches the regular
 * expression as written) or bare (the rest of the string, trimmed).
 */

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface Matcher {
  readonly name: string;
  readonly op: MatchOp;
  readonly value: string;
  /** Normalised text: `name op "value"`. */
  readonly text: string;
  /** Whether one value satisfies the matcher, ignoring other values of the label. */
  test(value: string): boolean;
  matches(set: LabelSet): boolean;
}

/** A matcher string that cannot be read; the message says where and why. */
export class MatcherSyntaxError extends Error {
  override readonly name = 'MatcherSyntaxError';
}

// Label names: identifiers, and `tags.<key>` where Sentry tag keys may hold
// `.`, `:` and `-` (`browser.name`, `sentry:user`).
const NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*/;
const OP = /^(=~|!~|!=|=)/;

function unquote(text: string, input: string): string {
  let out = '';
  for (let i = 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') {
      const next = text[i + 1];
      if (next === undefined) break;
      if (next === '"' || next === '\\') out += next;
      else if (next === 'n') out += '\n';
      else out += `\\${next}`;
      i++;
      continue;
    }
    if (c === '"') {
      const rest = text.slice(i + 1).trim();
      if (rest !== '') {
        throw new MatcherSyntaxError(
          `unexpected ${JSON.stringify(rest)} after the closing quote in ${JSON.stringify(input)}`,
        );
      }
      return out;
    }
    out += c;
  }
  throw new MatcherSyntaxError(`missing closing quote in ${JSON.stringify(input)}`);
}

function quote(value: string): string {
  return `"${value
    .replace(/\\(?=["\\n])|\\$/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\n/g, '\\n')}"`;
}

/** Compile an anchored regular expression; a leading `(?i)` ignores case. */
export function anchoredRegExp(source: string): RegExp {
  const insensitive = source.startsWith('(?i)');
  const body = insensitive ? source.slice(4) : source;
  try {
    return new RegExp(`^(?:${body})$`, insensitive ? 'i' : '');
  } catch (err) {
    throw new MatcherSyntaxError(
      `invalid regular expression ${JSON.stringify(source)}: ${(err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, '')}`,
    );
  }
}

/** Read one matcher. Throws `MatcherSyntaxError` saying what is wrong. */
export function parseMatcher(input: string): Matcher {
  if (typeof input !== 'string') {
    throw new MatcherSyntaxError('a matcher is a string such as project="web"');
  }
  const text = input.trim();
  const name = NAME.exec(text)?.[0];
  if (!name) {
    throw new MatcherSyntaxError(
      `${JSON.stringify(input)} does not start with a label name (such as project, level or tags.browser)`,
    );
  }
  const afterName = text.slice(name.length).trimStart();
  const op = OP.exec(afterName)?.[0] as MatchOp | undefined;
  if (!op) {
    throw new MatcherSyntaxError(
      `${JSON.stringify(input)}: expected =, !=, =~ or !~ after ${name}`,
    );
  }
  const rawValue = afterName.slice(op.length).trim();
  const value = rawValue.startsWith('"') ? unquote(rawValue, input) : rawValue;
  if (!rawValue.startsWith('"') && rawValue.includes('"')) {
    throw new MatcherSyntaxError(
      `${JSON.stringify(input)}: a value with a quote must be quoted as a whole, like ${name}${op}"…"`,
    );
  }
  const regex = op === '=~' || op === '!~' ? anchoredRegExp(value) : undefined;
  const positive = (v: string): boolean => (regex ? regex.test(v) : v === value);
  const negated = op === '!=' || op === '!~';
  return {
    name,
    op,
    value,
    text: `${name}${op}${quote(value)}`,
    test: (v) => positive(v) !== negated,
    matches(set) {
      // A positive matcher matches when any value of the label does; a
      // negative one when none does, so `project!="web"` never lets through
      // a metric alert that watches web among other projects.
      const any = labelValues(set, name).some(positive);
      return any !== negated;
    },
  };
}

/** The first matcher of the list the label set fails, if any. */
export function firstMismatch(matchers: readonly Matcher[], set: LabelSet): Matcher | undefined {
  return matchers.find((m) => !m.matches(set));
}

/** `level=~"error|fatal" (level is "warning")`: a failed matcher and what it saw. */
export function describeMismatch(m: Matcher, set: LabelSet): string {
  const values = labelValues(set, m.name);
  const seen =
    values.length > 1
      ? `${m.name} is one of ${values.map((v) => JSON.stringify(v)).join(', ')}`
      : values[0] === ''
        ? `${m.name} is empty`
        : `${m.name} is ${JSON.stringify(values[0])}`;
  return `${m.text} (${seen})`;
}

/**
 * Whether a matcher list would match anything at all without the user
 * meaning it to: Alertmanager refuses silences whose every matcher matches
 * the empty string, since they would silence every notification lacking
 * those labels.
 */
export function matchesEmpty(m: Matcher): boolean {
  return m.test('');
}
