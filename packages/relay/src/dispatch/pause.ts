/** Key-value namespace holding paused instances, shared by replicas. */
export const INSTANCES_NAMESPACE = 'instances';

/** What the store holds for an instance paused after failing too often in a row. */
export interface PauseRecord {
  paused: true;
  since: number;
  reason: string;
}
