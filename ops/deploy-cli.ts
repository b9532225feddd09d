// `./sempre deploy`: a rolling deploy with zero failed requests (see rolling-deploy.ts).
import '../shared/closed-stdout.ts';
import { runCommand } from '../shared/command.ts';
import { deployCommand } from './deploy-options.ts';
import { DeployFailure, rollingDeploy } from './rolling-deploy.ts';

await runCommand(deployCommand, async (options) => {
  const interrupted = new AbortController();
  process.on('SIGINT', () => interrupted.abort());
  process.on('SIGTERM', () => interrupted.abort());
  // Progress goes to stderr so --json output stays clean on stdout.
  const say = (line: string) => process.stderr.write(`${line}\n`);
  try {
    const result = await rollingDeploy(options, { say, signal: interrupted.signal });
    if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (result.ok) {
      say(`deployed ${result.version} to ${result.updated.join(', ')} in ${(result.totalMs / 1000).toFixed(1)} s`);
      return 0;
    }
    const f = result.failure!;
    say(`\nDEPLOY STOPPED at ${f.instance} (${f.phase}): ${f.reason}`);
    say(f.leftInMaintenance
      ? `${f.instance} stays in maintenance: the balancer does not send it requests. ${result.updated.length ? `Already on ${result.version}: ${result.updated.join(', ')}. ` : ''}The others keep serving their version.`
      : `${f.instance} is back in rotation on its old version; nothing else was changed.`);
    if (f.leftInMaintenance) say(`Fix the release and deploy again, or roll ${f.instance} back: ./sempre deploy --version <previous> --instances ${f.instance} --restart '…'`);
    return 1;
  } catch (error) {
    if (error instanceof DeployFailure) {
      say(`deploy: ${error.message}`);
      return error.phase === 'precheck' ? 2 : 1;
    }
    throw error;
  }
});
