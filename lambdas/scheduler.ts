import { awsDeps } from '../lib/wiring/aws.js';

/** EventBridge tick: enqueue the runs of due jobs. */
export const handler = async (): Promise<{ started: number }> => {
  const deps = awsDeps('scheduler', process.env);
  const { started } = await (await deps.scheduler()).tick();
  return { started: started.length };
};
