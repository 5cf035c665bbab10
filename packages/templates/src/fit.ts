import { cutEscaped } from './escape';

/** One piece of a message, in display order. */
export interface MessagePart {
  text: string;
  /**
   * Higher is more important. Parts are shortened lowest priority first
   * (and, among equals, the last one first). Give the title and the link the
   * highest priority, the stack trace and extra data the lowest.
   */
  priority: number;
  /** Never shorten this part (the link: a cut URL is worse than none). */
  keep?: boolean;
}

export interface FitOptions {
  /** Between parts; default a blank line. */
  separator?: string;
  /** Appended when anything was cut. */
  note?: string;
  /** Size of a candidate text; default its UTF-8 bytes. Pass the serialised body size here. */
  measure?: (text: string) => number;
}

export interface FitResult {
  text: string;
  truncated: boolean;
  /** `measure(text)` of the result. */
  bytes: number;
}

export const DEFAULT_TRUNCATION_NOTE =
  '(Message truncated to fit the target size limit; open the link for the full details.)';

export const utf8Bytes = (text: string): number => Buffer.byteLength(text, 'utf8');

/**
 * The largest `v` in `[0, hi]` for which `fits(v)` holds, assuming it holds
 * for every value below one that does; undefined when not even 0 fits.
 */
export function largestFitting(hi: number, fits: (v: number) => boolean): number | undefined {
  if (!fits(0)) return undefined;
  let lo = 0;
  let top = hi;
  while (lo < top) {
    const mid = Math.ceil((lo + top) / 2);
    if (fits(mid)) lo = mid;
    else top = mid - 1;
  }
  return lo;
}

/** Cut `text` so that its UTF-8 form is at most `maxBytes`, on a character boundary. */
export function cutToBytes(text: string, maxBytes: number): string {
  if (utf8Bytes(text) <= maxBytes) return text;
  const chars = Array.from(text);
  const n = largestFitting(chars.length, (v) => utf8Bytes(chars.slice(0, v).join('')) <= maxBytes);
  return chars.slice(0, n ?? 0).join('');
}

/**
 * Keep a message of several parts under `maxBytes` (as `measure` counts
 * them): shorten the least important parts first, drop them when shortening
 * is not enough, and append `note` saying so. The parts are expected to be
 * escaped already; a cut never leaves half an escape behind.
 */
export function fitToBytes(
  parts: readonly MessagePart[],
  maxBytes: number,
  options: FitOptions = {},
): FitResult {
  const separator = options.separator ?? '\n\n';
  const note = options.note ?? DEFAULT_TRUNCATION_NOTE;
  const measure = options.measure ?? utf8Bytes;
  const texts = parts.map((p) => p.text);
  const join = (withNote: boolean): string => {
    const body = texts.filter((t) => t !== '').join(separator);
    return withNote ? (body === '' ? note : `${body}${separator}${note}`) : body;
  };
  const full = join(false);
  const fullBytes = measure(full);
  if (fullBytes <= maxBytes) return { text: full, truncated: false, bytes: fullBytes };

  const order = parts
    .map((part, index) => ({ part, index }))
    .filter(({ part }) => !part.keep)
    .sort((a, b) => a.part.priority - b.part.priority || b.index - a.index);
  for (const { part, index } of order) {
    const original = part.text;
    const chars = Array.from(original).length;
    const attempt = (v: number): string =>
      v === 0 ? '' : v >= chars ? original : `${cutEscaped(original, v - 1)}…`;
    const best = largestFitting(chars, (v) => {
      texts[index] = attempt(v);
      return measure(join(true)) <= maxBytes;
    });
    texts[index] = attempt(best ?? 0);
    if (best !== undefined) {
      const text = join(true);
      return { text, truncated: true, bytes: measure(text) };
    }
  }
  // Even the kept parts alone are too big: cut the whole text as a last resort.
  const text = hardCut(join(true), note, maxBytes, measure);
  return { text, truncated: true, bytes: measure(text) };
}

/** Cut the end of `text` (keeping `note` at the end) until `measure` allows it. */
export function hardCut(
  text: string,
  note: string,
  maxBytes: number,
  measure: (text: string) => number,
): string {
  if (measure(text) <= maxBytes) return text;
  const chars = Array.from(text.endsWith(note) ? text.slice(0, -note.length) : text);
  const make = (v: number): string => `${cutEscaped(chars.slice(0, v).join(''), v)}…\n\n${note}`;
  const best = largestFitting(chars.length, (v) => measure(make(v)) <= maxBytes);
  if (best !== undefined) return make(best);
  const noteChars = Array.from(note);
  const n = largestFitting(
    noteChars.length,
    (v) => measure(noteChars.slice(0, v).join('')) <= maxBytes,
  );
  return noteChars.slice(0, n ?? 0).join('');
}
