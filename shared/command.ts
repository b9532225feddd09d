// The edge of every command: read options, show help, report bad input and
// exit non-zero before anything starts. Only this function exits the process.
import { ConfigError, describeOptions, loadOptions, type CommandSpec, type OptionSpecs, type OptionValues } from './config/options.ts';

export async function runCommand<S extends OptionSpecs>(
  spec: CommandSpec<S>,
  main: (options: OptionValues<S>) => Promise<number | void>,
  argv: readonly string[] = process.argv.slice(2),
  /** The environment, or how to read it (a reading may fail as bad input does). */
  env: NodeJS.ProcessEnv | (() => NodeJS.ProcessEnv) = process.env,
): Promise<void> {
  let options: OptionValues<S>;
  try {
    const loaded = loadOptions(spec, argv, typeof env === 'function' ? env() : env);
    if (loaded.kind === 'help') {
      process.stdout.write(loaded.text);
      return;
    }
    if (loaded.printConfig) {
      process.stdout.write(`${describeOptions(spec, loaded.values)}\n`);
      return;
    }
    options = loaded.values;
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) process.stderr.write(`${spec.command}: ${problem}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
  try {
    const code = await main(options);
    if (typeof code === 'number') process.exitCode = code;
  } catch (error) {
    process.stderr.write(`${spec.command}: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
