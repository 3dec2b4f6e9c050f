/** `flow kill-switch [on|off]`: shows the global kill switch, or (admin tokens) sets it. */
import { Argument } from 'commander';
import type { KillSwitchState } from '../../schemas';
import { nonEmptyText } from '../arguments';
import type { RegisterCommand } from '../command';
import { usage } from '../errors';

export const registerKillSwitch: RegisterCommand = (program, { io, client }) => {
  program
    .command('kill-switch')
    .description('show the global kill switch, or (admin tokens) turn it on (running jobs pause, new jobs start paused) or off')
    .addArgument(new Argument('[state]', 'on or off; omit it to show the state').choices(['on', 'off']))
    .option('--reason <text>', 'recorded with the switch (with on or off)', nonEmptyText('--reason'))
    .action(async (state: 'on' | 'off' | undefined, options: { reason?: string }) => {
      if (state === undefined && options.reason !== undefined) throw usage('--reason goes with `flow kill-switch on` or `flow kill-switch off`');
      const api = client();
      if (state === undefined) {
        io.stdout.write(`${describeKillSwitch(await api.getKillSwitch())}\n`);
        return;
      }
      const result = await api.killSwitch(state === 'on', options.reason);
      const effect = result.on ? 'they pause at their next batch boundary; new jobs start paused' : 'paused jobs go on';
      const jobs = `${result.signalled} running job${result.signalled === 1 ? '' : 's'}`;
      io.stdout.write(`kill switch ${result.on ? 'on' : 'off'}${result.reason ? ` (${result.reason})` : ''}: ${jobs} signalled, ${effect}\n`);
    });
};

export function describeKillSwitch(state: KillSwitchState): string {
  if (!state.at) return 'kill switch off (never set)';
  const who = `${state.on ? 'turned on' : 'turned off'} by ${state.by ?? 'unknown'} at ${state.at}`;
  return `kill switch ${state.on ? 'on' : 'off'}${state.reason ? `: ${state.reason}` : ''} (${who})`;
}
