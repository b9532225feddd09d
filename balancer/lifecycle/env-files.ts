// --environment-file: the balancer's options kept in files of KEY=VALUE lines (the
// format of systemd's EnvironmentFile=), read at start and again at every
// reload. systemd reads EnvironmentFile= only when it starts a service, so a
// changed option there would need a restart; read here, a reload applies it.
import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { ConfigError } from '../../shared/config/options.ts';

/** The files' variables over `base`. A path starting with "-" may be missing (as in systemd). */
export function withEnvFiles(base: NodeJS.ProcessEnv, paths: readonly string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const given of paths) {
    const optional = given.startsWith('-');
    const path = optional ? given.slice(1) : given;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      if (optional && (error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new ConfigError([`balancer.environmentFile: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`]);
    }
    Object.assign(env, parseEnv(text));
  }
  return env;
}

/** The --environment-file value (flag or SEMPRE_ENVIRONMENT_FILE), read before the other options: they may come from the files. */
export function envFilePaths(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  let value = env.SEMPRE_ENVIRONMENT_FILE ?? '';
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (arg === '--environment-file' && argv[i + 1] !== undefined) value = argv[i + 1]!;
    else if (arg.startsWith('--environment-file=')) value = arg.slice('--environment-file='.length);
  }
  return value.split(',').map((p) => p.trim()).filter(Boolean);
}
