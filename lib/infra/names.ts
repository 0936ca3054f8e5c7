/** `agentTasks` → `AgentTasks`: construct ids and output names from resource ids. */
export function pascal(id: string): string {
  return id.charAt(0).toUpperCase() + id.slice(1);
}
