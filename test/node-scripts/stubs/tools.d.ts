/** Types for tools.js (plain JS: the stand-ins and their server need no TypeScript loader). */
export interface SwarmState {
  state: 'inactive' | 'pending' | 'active' | 'error' | 'locked';
  controlAvailable?: boolean;
  clusterId?: string;
  nodeId?: string;
  nodeAddr?: string;
  remoteManagers?: string[];
}
export interface DockerState {
  installed: boolean;
  daemon: boolean;
  /** Engine labels dockerd loaded from daemon.json (at start or reload). */
  labels?: string[];
  swarm: SwarmState;
  faults: { joinFailures?: number; joinLate?: boolean };
  /** Swarm services a manager lists (`docker service ls`); `authRefreshes` counts `update --with-registry-auth`. */
  services?: { name: string; image: string; authRefreshes?: number }[];
}
export const TOOLS: string[];
export function writeWrapper(binDir: string, tool: string, port: number): string;
export class ToolServer {
  static start(): Promise<ToolServer>;
  readonly port: number;
  close(): Promise<void>;
}
export function runTool(tool: string, argv: string[], env: Record<string, string>, cwd: string, port: number): { code: number; stdout: string; stderr: string };
export function joinSwarm(cloudDir: string, nodeDir: string, request: Record<string, unknown>): [number, unknown];
export function initSwarm(cloudDir: string, state: DockerState, ip: string, pool?: string): DockerState;
export function loadDaemonConfig(state: DockerState, daemonJson: string): DockerState;
export function loadDocker(nodeDir: string): DockerState;
export function saveDocker(nodeDir: string, state: DockerState): void;
export function defaultDockerState(): DockerState;
export function readJson<T>(file: string, fallback: T): T;
export function writeJson(file: string, value: unknown): void;
export function newToken(): string;
