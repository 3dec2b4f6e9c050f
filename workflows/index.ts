// The workflow bundle's entry point: every workflow a Flow worker runs.
export { trainingJob } from './trainingJob';
export { evaluateCheckpoint } from './evaluateCheckpoint';
