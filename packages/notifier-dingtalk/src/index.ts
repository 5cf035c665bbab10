export {
  DingTalkNotifier,
  DINGTALK_FIELDS,
  MAX_BODY_BYTES,
  RATE_LIMIT_CODES,
  RATE_LIMIT_RETRY_MS,
  CONFIG_ERROR_CODES,
  splitList,
} from './notifier';
export type { DingTalkConfig, DingTalkMessage, DingTalkNotifierOptions } from './notifier';
export { dingtalkSign, signedUrl } from './sign';
