// The public API of @plugboard/templates.
export {
  escapeFor,
  escapeHtml,
  escapeMarkdown,
  escapePlain,
  defang,
  safeUrl,
  cutEscaped,
  ESCAPE_MODES,
} from './escape';
export type { EscapeMode } from './escape';
export { DEFAULT_TEMPLATES, FALLBACK_TEMPLATE, defaultTemplate } from './defaults';
export {
  fitToBytes,
  cutToBytes,
  hardCut,
  largestFitting,
  utf8Bytes,
  DEFAULT_TRUNCATION_NOTE,
} from './fit';
export type { MessagePart, FitOptions, FitResult } from './fit';
export { buildView, headlineFor, DEFAULT_FRAMES, DEFAULT_TAGS, DEFAULT_FIELD_CHARS } from './view';
export type { TemplateView, ViewLimits } from './view';
export {
  renderTemplate,
  renderDefault,
  renderFitted,
  plainTitle,
  checkTemplate,
  TemplateError,
} from './render';
export type { RenderOptions, RenderFittedOptions, RenderFittedResult } from './render';
