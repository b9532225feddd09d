import { integer, oneOf } from './values.ts';

/** Options every long-running command shares. */
export const loggingOptions = {
  logLevel: { flag: 'log-level', env: 'SEMPRE_LOG_LEVEL', placeholder: 'LEVEL', default: 'info', description: 'trace, debug, info, warn or error', schema: oneOf(['trace', 'debug', 'info', 'warn', 'error'] as const) },
  logFormat: { flag: 'log-format', env: 'SEMPRE_LOG_FORMAT', placeholder: 'FORMAT', default: 'auto', description: 'json, pretty, or auto (pretty on a terminal)', schema: oneOf(['auto', 'json', 'pretty'] as const) },
  logBuffer: { flag: 'log-buffer', env: 'SEMPRE_LOG_BUFFER', placeholder: 'BYTES', default: '1048576', description: 'bytes of JSON log lines held while standard output is slow or not read (per process); when full, lines are dropped, warnings and errors last, and their number is logged once stdout is read again (the balancer also counts them: sempre_log_lines_dropped_total). The default holds about 3,800 access lines of about 240 bytes: 4 s at 1,000 requests a second', schema: integer(16 * 1024, 1024 * 1024 * 1024) },
};
