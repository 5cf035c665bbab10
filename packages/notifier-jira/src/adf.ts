/**
 * A small Atlassian Document Format (ADF) builder: REST API v3 takes rich
 * text (description, environment, textarea custom fields) only as ADF, and
 * refuses a plain string there.
 */

export interface AdfText {
  type: 'text';
  text: string;
  marks?: Array<{ type: string; attrs?: Record<string, unknown> }>;
}

export type AdfInline = AdfText | { type: 'hardBreak' };

export type AdfBlock =
  | { type: 'paragraph'; content: AdfInline[] }
  | { type: 'codeBlock'; attrs?: Record<string, unknown>; content: AdfText[] }
  | { type: 'bulletList'; content: Array<{ type: 'listItem'; content: AdfBlock[] }> };

export interface AdfDoc {
  type: 'doc';
  version: 1;
  content: AdfBlock[];
}

export function text(value: string, marks?: AdfText['marks']): AdfText {
  return marks && marks.length > 0
    ? { type: 'text', text: value, marks }
    : { type: 'text', text: value };
}

export function strong(value: string): AdfText {
  return text(value, [{ type: 'strong' }]);
}

export function link(label: string, href: string): AdfText {
  return text(label, [{ type: 'link', attrs: { href } }]);
}

/** A paragraph; ADF refuses empty text nodes, so empty pieces are dropped. */
export function paragraph(...content: AdfInline[]): AdfBlock {
  return {
    type: 'paragraph',
    content: content.filter((c) => c.type !== 'text' || c.text.length > 0),
  };
}

export function codeBlock(code: string): AdfBlock {
  return { type: 'codeBlock', attrs: {}, content: code ? [text(code)] : [] };
}

export function bulletList(items: AdfInline[][]): AdfBlock {
  return {
    type: 'bulletList',
    content: items.map((inline) => ({ type: 'listItem', content: [paragraph(...inline)] })),
  };
}

export function doc(content: AdfBlock[]): AdfDoc {
  return { type: 'doc', version: 1, content };
}

/** Plain text as ADF: blank lines separate paragraphs, single newlines are hard breaks. */
export function docFromText(value: string): AdfDoc {
  const blocks = value
    .replace(/\r\n?/g, '\n')
    .split(/\n{2,}/)
    .filter((block) => block.trim().length > 0)
    .map((block) => {
      const inline: AdfInline[] = [];
      block.split('\n').forEach((line, i) => {
        if (i > 0) inline.push({ type: 'hardBreak' });
        if (line.length > 0) inline.push(text(line));
      });
      return paragraph(...inline);
    });
  return doc(blocks);
}

export function isAdfDoc(value: unknown): value is AdfDoc {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { type?: unknown }).type === 'doc' &&
    Array.isArray((value as { content?: unknown }).content)
  );
}
