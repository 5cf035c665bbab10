import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PlugboardError } from '../src/errors';
import { compactSentryJson, loadSample, SAMPLE_KINDS } from '../src/samples';

const samplesDir = join(__dirname, '..', 'samples');

describe('SAMPLE_KINDS and the samples folder', () => {
  it('has one sample per kind the relay can send', () => {
    expect(SAMPLE_KINDS).toEqual([
      'issue.created',
      'issue.resolved',
      'issue.assigned',
      'issue.ignored',
      'event_alert.triggered',
      'error.created',
      'metric_alert.critical',
      'metric_alert.warning',
      'metric_alert.resolved',
      'comment.created',
      'installation.created',
      'legacy_webhook.triggered',
    ]);
  });

  it('every JSON file is a known kind, and the README names every file', () => {
    const files = readdirSync(samplesDir).filter((f) => f.endsWith('.json'));
    const readme = readFileSync(join(samplesDir, 'README.md'), 'utf8');
    expect(files).toHaveLength(SAMPLE_KINDS.length);
    for (const file of files) {
      const kind = file === 'legacy_webhook.json' ? 'legacy_webhook.triggered' : file.slice(0, -5);
      expect(SAMPLE_KINDS).toContain(kind);
      expect(readme).toContain(`\`${file}\``);
    }
  });

  // SHA-256 of the files in the shared fixtures folder (Sentry's docs
  // examples); pinned here because tests must not read outside the repository.
  it.each([
    ['issue.created', 'f1c82efe7505d156da08296a259951a240ca96e329c192f0b6b515eff04d57c3'],
    ['event_alert.triggered', 'fd5ec1197748c204fce3ec859e147f9f576e3831620de5a50f97915df8886a25'],
    ['error.created', 'c831b12b659259534ad6817d908e43f5c7968451cc60b0ad6351fe582ac7f86a'],
    ['installation.created', '2f021ec77fd3d6bd92b71c911b51ea141aac50e9c212b81f4134da23bb8575b9'],
  ])('%s is the real docs example, byte for byte', (kind, sha256) => {
    const bytes = readFileSync(join(samplesDir, `${kind}.json`));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(sha256);
  });
});

describe('loadSample', () => {
  it('splits the kind into resource and action and returns the file as stored', () => {
    const sample = loadSample('metric_alert.critical');
    expect(sample.resource).toBe('metric_alert');
    expect(sample.action).toBe('critical');
    expect(sample.pretty).toBe(
      readFileSync(join(samplesDir, 'metric_alert.critical.json'), 'utf8'),
    );
    expect(sample.body).toEqual(JSON.parse(sample.pretty));
    expect((sample.body as { action: string }).action).toBe('critical');
  });

  it('every Integration Platform sample names its own action in the body', () => {
    for (const kind of SAMPLE_KINDS.filter((k) => !k.startsWith('legacy_webhook'))) {
      const sample = loadSample(kind);
      expect((sample.body as { action: string }).action).toBe(sample.action);
    }
  });

  it('the legacy sample is resource legacy_webhook, also by its short name', () => {
    for (const kind of ['legacy_webhook.triggered', 'legacy_webhook']) {
      const sample = loadSample(kind);
      expect(sample.resource).toBe('legacy_webhook');
      expect(sample.action).toBe('triggered');
      expect((sample.body as { project_slug: string }).project_slug).toBe('backend');
    }
  });

  it('returns a fresh body each time', () => {
    const first = loadSample('issue.created').body as { action: string };
    first.action = 'mutated';
    expect((loadSample('issue.created').body as { action: string }).action).toBe('created');
  });

  it.each(['issue.deleted', 'seer.completed', '', '../package', 'issue.created/../../package'])(
    'unknown kind %j throws PB_PAYLOAD_UNSUPPORTED listing the known kinds',
    (kind) => {
      let thrown: unknown;
      try {
        loadSample(kind);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(PlugboardError);
      expect((thrown as PlugboardError).code).toBe('PB_PAYLOAD_UNSUPPORTED');
      expect((thrown as Error).message).toContain('issue.created, issue.resolved');
      expect((thrown as Error).message).toContain('legacy_webhook.triggered');
    },
  );
});

describe('compactSentryJson', () => {
  it('writes compact JSON with every non-ASCII character escaped, as Sentry sends it', () => {
    const value = {
      message: 'Fehler: Datei nicht gefunden – ü€😀',
      nested: { list: [1, 'ä'], empty: {} },
    };
    expect(compactSentryJson(value)).toBe(
      '{"message":"Fehler: Datei nicht gefunden \\u2013 \\u00fc\\u20ac\\ud83d\\ude00",' +
        '"nested":{"list":[1,"\\u00e4"],"empty":{}}}',
    );
  });

  it('output is printable ASCII and parses back to the same value', () => {
    for (const kind of SAMPLE_KINDS) {
      const body = loadSample(kind).body;
      const compact = compactSentryJson(body);
      expect(compact).toMatch(/^[\x20-\x7e]*$/);
      expect(JSON.parse(compact)).toEqual(body);
    }
  });

  it('escapes the comment sample exactly as Sentry would', () => {
    const compact = compactSentryJson(loadSample('comment.created').body);
    expect(compact.startsWith('{"action":"created","data":{"comment":"Reproduced')).toBe(true);
    expect(compact).toContain('Safari too \\u2013 the runner');
    expect(compact).toContain('next deploy \\ud83d\\udc4d"');
  });

  it('escapes DEL, lone surrogates and control characters like Python ensure_ascii', () => {
    expect(compactSentryJson('\u007f')).toBe('"\\u007f"');
    expect(compactSentryJson('\ud800')).toBe('"\\ud800"');
    expect(compactSentryJson('a\nb\u0001')).toBe('"a\\nb\\u0001"');
    expect(compactSentryJson('\u2028')).toBe('"\\u2028"');
  });

  it('keeps ASCII text and numbers as JSON.stringify writes them', () => {
    expect(compactSentryJson({ a: 'plain / "quoted"', b: 1566248777.677, c: 1e21, d: 0.1 })).toBe(
      '{"a":"plain / \\"quoted\\"","b":1566248777.677,"c":1e+21,"d":0.1}',
    );
  });

  it('throws a coded error for values JSON cannot represent', () => {
    expect(() => compactSentryJson(undefined)).toThrow(PlugboardError);
    expect(() => compactSentryJson(() => 1)).toThrow(/cannot serialise function/);
  });
});
