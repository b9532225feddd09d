import { oneOf } from './values.ts';

/** Options every long-running command shares. */
export const loggingOptions = {
  logLevel: { flag: 'log-level', env: 'SEMPRE_LOG_LEVEL', placeholder: 'LEVEL', default: 'info', description: 'trace, debug, info, warn or error', schema: oneOf(['trace', 'debug', 'info', 'warn', 'error'] as const) },
  logFormat: { flag: 'log-format', env: 'SEMPRE_LOG_FORMAT', placeholder: 'FORMAT', default: 'auto', description: 'json, pretty, or auto (pretty on a terminal)', schema: oneOf(['auto', 'json', 'pretty'] as const) },
};
