// What the lab's commands (drill, bench) share at their edge.
import { LabError, requireLab, type LabState } from './netns-lab.ts';

/** The running lab, or undefined after telling the person how to start it. */
export function labOrExplain(command: string): LabState | undefined {
  try {
    return requireLab();
  } catch (error) {
    process.stderr.write(`${command}: ${(error as LabError).message}\n`);
    return undefined;
  }
}

/** Aborted on the first Ctrl-C (so faults get reverted); a second one exits at once. */
export function abortOnCtrlC(message: string): AbortSignal {
  const interrupt = new AbortController();
  process.on('SIGINT', () => {
    if (interrupt.signal.aborted) process.exit(130);
    process.stderr.write(`\n${message} (Ctrl-C again to exit at once)…\n`);
    interrupt.abort();
  });
  return interrupt.signal;
}
