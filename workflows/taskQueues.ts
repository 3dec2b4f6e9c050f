/** The task queue training workers poll (workflow and activity tasks, for now one queue). */
export const TRAINING_TASK_QUEUE = 'flow-training';
