import { loadSample, parseLegacyWebhook, parseSentryWebhook, SAMPLE_KINDS } from '../src';

// `plugboard send-test` sends `loadSample(kind, { unique: true })`: a relay
// drops a webhook whose content it has seen (even across restarts), so each
// unique sample must parse to a dedup key no earlier sample had.

function dedupKey(kind: string, unique: boolean): string {
  const sample = loadSample(kind, { unique });
  const parsed =
    sample.resource === 'legacy_webhook'
      ? parseLegacyWebhook(sample.body)
      : parseSentryWebhook({ resource: sample.resource, body: sample.body });
  if (!parsed.ok) throw new Error(`${kind}: ${parsed.reason}: ${parsed.detail}`);
  return parsed.notification.dedupKey;
}

describe('loadSample(kind, { unique: true })', () => {
  it.each(SAMPLE_KINDS.map((kind) => [kind]))('gives %s a new dedup key each time', (kind) => {
    const recorded = dedupKey(kind, false);
    expect(dedupKey(kind, false)).toBe(recorded);
    const first = dedupKey(kind, true);
    const second = dedupKey(kind, true);
    expect(first).not.toBe(recorded);
    expect(second).not.toBe(first);
  });

  it('keeps the ids consistent inside the body and leaves everything else alone', () => {
    const recorded = loadSample('event_alert.triggered');
    const fresh = loadSample('event_alert.triggered', { unique: true });
    const event = (fresh.body as { data: { event: Record<string, string> } }).data.event;
    expect(event.event_id).toMatch(/^[0-9a-f]{32}$/);
    expect(event.web_url).toContain(event.event_id);
    expect(fresh.pretty).not.toContain('e4874d664c3540c1a32eab185f12c5ab');
    const strip = (body: unknown): string =>
      JSON.stringify(body).replace(/e4874d664c3540c1a32eab185f12c5ab|[0-9a-f]{32}/g, 'ID');
    expect(strip(fresh.body)).toBe(strip(recorded.body));
  });
});
