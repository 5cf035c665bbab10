export {
  FeishuNotifier,
  FEISHU_FIELDS,
  MAX_BODY_BYTES,
  RATE_LIMIT_CODES,
  RATE_LIMIT_RETRY_MS,
  CONFIG_ERROR_CODES,
  splitList,
  isRateLimited,
  cardMarkdown,
} from './notifier';
export type { FeishuConfig, FeishuMessageType, FeishuNotifierOptions } from './notifier';
export { feishuSign } from './sign';
