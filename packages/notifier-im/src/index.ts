// The public API of @plugboard/notifier-im. Keep this a curated list of re-exports.
export { ImNotifier } from './notifier';
export type { ImNotifierOptions } from './notifier';
export { IM_NOTIFIER_VERSION } from './version';
export { mwsSigner, hmacSha256Signer, installSigner, DEFAULT_HMAC_STRING_TO_SIGN } from './signers';
export type { RequestSigner, SignableRequest, HmacSha256SignerOptions } from './signers';
export { DEFAULT_TEMPLATE, renderMessage } from './message';
export type { ImConfig, SignatureScheme, RecipientSource, Addressing } from './config';
