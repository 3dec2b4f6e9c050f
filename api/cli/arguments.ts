/**
 * Parsers of the `flow` command line's option and argument values, for commander: each throws
 * commander's InvalidArgumentError, which commander reports as a usage error naming the option.
 */
import { InvalidArgumentError } from 'commander';
import { INT4_MAX, type CheckpointSelector } from '../schemas';

export function positiveInt(name: string, max = INT4_MAX) {
  return (value: string) => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new InvalidArgumentError(`${name} must be an integer from 1 to ${max}.`);
    return Number(value);
  };
}

export function nonNegativeInt(name: string) {
  return (value: string) => {
    if (!/^\d+$/.test(value) || Number(value) > INT4_MAX) throw new InvalidArgumentError(`${name} must be an integer from 0 to ${INT4_MAX}.`);
    return Number(value);
  };
}

/** A decimal number as people write one (12, 12.5, .5, 1e2, +3); not hexadecimal or binary, which Number() reads too. */
const DECIMAL = /^[+]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A positive amount of US dollars, with or without a leading `$`. */
export function positiveUsd(name: string) {
  return (value: string) => {
    const text = value.trim().replace(/^\$\s*/, '');
    const number = Number(text);
    // Decimal only: Number() also reads "0x10" as 16 and "0b11" as 3.
    if (!DECIMAL.test(text) || !Number.isFinite(number) || number <= 0) throw new InvalidArgumentError(`${name} must be a positive amount in USD, e.g. 25 or 12.50.`);
    return number;
  };
}

/** `best`, `latest` or `<run>:<iteration>` (run from 1, iteration from 0). */
export function checkpointSelector(value: string): CheckpointSelector {
  if (value === 'best' || value === 'latest') return value;
  const match = /^(\d+):(\d+)$/.exec(value.trim());
  if (!match || Number(match[1]) < 1 || Number(match[1]) > INT4_MAX || Number(match[2]) > INT4_MAX) {
    throw new InvalidArgumentError(`--checkpoint must be best, latest or <run>:<iteration> (e.g. 1:3), each at most ${INT4_MAX}.`);
  }
  return { run: Number(match[1]), iteration: Number(match[2]) };
}

/** A TCP port to listen on, 0 for any free one. */
export function listenPort(name: string) {
  return (value: string) => {
    if (!/^\d+$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError(`${name} must be a port from 0 to 65535 (0: any free port).`);
    return Number(value);
  };
}

/** Text that must say something: an empty value (an unset shell variable) is refused rather than dropped. */
export function nonEmptyText(name: string) {
  return (value: string) => {
    if (value.trim() === '') throw new InvalidArgumentError(`${name} is empty; leave the option out instead.`);
    return value;
  };
}

/** A reward threshold, 0 to 1. */
export function rewardThreshold(name: string) {
  return (value: string) => {
    const number = Number(value);
    if (!DECIMAL.test(value.trim()) || number < 0 || number > 1) throw new InvalidArgumentError(`${name} must be a number from 0 to 1.`);
    return number;
  };
}

/** A file to write; an empty name (`--out ""`, an unset shell variable) is refused rather than read as "no file". */
export function outputFile(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('A file name is needed, not an empty string.');
  return value;
}
