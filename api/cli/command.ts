/**
 * The contract of a `flow` subcommand: each file in commands/ exports one RegisterCommand that
 * adds its commander subcommand to the program; api/cli/flow.ts lists them in help order.
 */
import type { Command } from 'commander';
import type { FlowClient } from '../client/flowClient';
import type { CliIo } from './io';

export interface CliContext {
  io: CliIo;
  /** A client of the API at the URL, with the token, the global options or the environment give. */
  client(): FlowClient;
  /** The process's exit code when the command returns normally (default 0). */
  setExitCode(code: number): void;
}

export type RegisterCommand = (program: Command, context: CliContext) => void;
