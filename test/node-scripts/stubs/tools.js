/*
 * Stand-ins for the commands the node scripts (scripts/node/*.sh) run on an EC2 instance, so tests can run the
 * scripts — or a whole rendered user-data — unchanged on any machine. Use them through sandbox.ts: each tool on a
 * node's PATH is a small bash wrapper (writeWrapper) that sends its argv over loopback TCP to the ToolServer of the
 * test's fake cloud, which runs the stand-in below inside the test process and answers exit code, stdout and
 * stderr. (A Node process per call cost ~0.15 CPU-s; a wrapper costs a bash start. docs: bench/RESULTS.md.)
 *
 *   aws        `aws autoscaling describe-auto-scaling-instances|complete-lifecycle-action` and `aws ec2 describe-instances`
 *              (the reconciler) against ec2.json, with the real CLI's error text and exit codes (254; missing region
 *              → 253). Parameter Store is not here: the scripts call its HTTP API with curl (parameter-store.ts).
 *   docker     `docker info [--format T]`, `docker swarm init|join-token -q|leave`; state in the node's docker.json.
 *              The Engine API (`POST /swarm/join` over the unix socket) is served by sandbox.ts with joinSwarm() below.
 *   docker     also `service ls --format '{{.Name}} {{.Image}}'` and `service update --detach --quiet --with-registry-auth`
 *              over docker.json `services` (the reconciler's ECR refresh).
 *   dnf        `dnf install -y docker` makes `docker` appear (daemon stopped); `amazon-ecr-credential-helper` puts
 *              `docker-credential-ecr-login` on PATH (recorded when called); other packages are just recorded.
 *   systemctl  `systemctl enable --now docker` starts the fake daemon; `daemon-reload`; `enable --now <unit>` needs the
 *              unit file in $SWARM_SYSTEMD_DIR; `list-jobs` lists the start jobs in the node's systemd.json `jobs`.
 *   cfn-signal records its arguments; `dnf install -y aws-cfn-bootstrap` puts it at <node>/opt/aws/bin/cfn-signal.
 *
 * Environment (the wrapper forwards these from the calling script): FAKE_CLOUD_DIR (shared by every node:
 * swarms.json, ec2.json, calls.jsonl), FAKE_NODE_DIR (one node: docker.json, bin/), FAKE_NODE_NAME. Every call is appended to
 * calls.jsonl as {node, tool, argv} (argv only: tests assert no token ever reaches a command line). Unsupported
 * commands/options exit 2 with "fake <tool>: unsupported", so a script drifting away from what the stand-ins model
 * fails loudly instead of passing by accident.
 * Faults (tests set them in the JSON files): docker.json `faults.joinFailures` = n → the first n joins answer 500;
 * `faults.joinLate` = true → the first join takes effect but answers 500 (a client-side timeout); swarms.json
 * `<id>.noLeader` = true → node commands and join-token fail as a manager without a leader does.
 * The server runs one call at a time, synchronously, like the Engine API calls sandbox.ts serves: every
 * read-modify-write of the shared JSON files is atomic, as the real services are (two managers racing for
 * init-lock see exactly one winner).
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const net = require('node:net');

function readJson(file, fallback) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if (e.code === 'ENOENT') return fallback;
    throw e;
  }
}
/** Atomic replace: readers in other processes never see half a file. */
function writeJson(file, value) {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2));
  fs.renameSync(tmp, file);
}

/** The call being served: its environment, working directory, output so far, and the server's port. */
let call;
/** How a stand-in ends early: the wrapper exits with `code` after printing what was written so far. */
class ToolExit extends Error {
  constructor(code) {
    super(`exit ${code}`);
    this.code = code;
  }
}
function out(text) {
  call.stdout += text;
}

const cloudDir = () => must('FAKE_CLOUD_DIR');
const nodeDir = () => must('FAKE_NODE_DIR');
function must(name) {
  const v = call.env[name];
  if (!v) fail(`fake tools: ${name} is not set`, 2);
  return v;
}
function fail(message, code) {
  call.stderr += `${message}\n`;
  throw new ToolExit(code);
}
function record(tool, argv, extra = {}) {
  const line = JSON.stringify({ node: call.env.FAKE_NODE_NAME ?? '', tool, argv, ...extra });
  fs.appendFileSync(path.join(cloudDir(), 'calls.jsonl'), `${line}\n`);
}

// ---------- swarm model, shared with the Engine API server in sandbox.ts ----------
const b36 = (n) => Array.from(crypto.randomBytes(n), (b) => (b % 36).toString(36)).join('');
const newToken = () => `SWMTKN-\x31-${b36(50)}-${b36(25)}`;

function defaultDockerState() {
  return { installed: true, daemon: true, labels: [], swarm: { state: 'inactive' }, faults: {} };
}
/** What dockerd does with daemon.json at start and on reload (SIGHUP): take its `labels`. */
function loadDaemonConfig(state, file = call.env.SWARM_DOCKER_CONFIG) {
  const conf = readJson(file ?? '/nonexistent', {});
  state.labels = Array.isArray(conf.labels) ? conf.labels : [];
  return state;
}
function dockerStatePath(dir) {
  return path.join(dir, 'docker.json');
}
function loadDocker(dir) {
  return readJson(dockerStatePath(dir), defaultDockerState());
}
function saveDocker(dir, state) {
  writeJson(dockerStatePath(dir), state);
}

/** A node as the managers record it (what `docker node inspect` shows); tests edit status etc. in swarms.json. */
function newSwarmNode(id, role, addr, state) {
  return { id, role, addr, labels: [...(state.labels ?? [])], status: 'ready', availability: 'active',
    reachability: role === 'manager' ? 'reachable' : undefined, leader: false, runningTasks: 0 };
}

/** Create a swarm with `ip` as its only manager; mutates and returns the node state. */
function initSwarm(cloud, state, ip, pool) {
  const swarms = readJson(path.join(cloud, 'swarms.json'), {});
  const id = b36(25);
  const addr = `${ip}:2377`;
  const nodeId = b36(25);
  swarms[id] = { managers: [addr], workerToken: newToken(), managerToken: newToken(), workers: [], pool,
    nodes: [{ ...newSwarmNode(nodeId, 'manager', addr, state), leader: true }] };
  writeJson(path.join(cloud, 'swarms.json'), swarms);
  state.swarm = { state: 'active', controlAvailable: true, clusterId: id, nodeId, nodeAddr: ip, remoteManagers: [addr] };
  return state;
}

/**
 * The Engine API's POST /swarm/join for the node in `dir`. Returns [httpStatus, body]. Checked against dockerd
 * 20.10: 200 with an empty body on success, 503 + "already part of a swarm" when in a swarm, 500 for a malformed
 * token. The 400 for a well-formed wrong token and the 500 when no manager answers are modelled, not measured.
 */
function joinSwarm(cloud, dir, request) {
  const state = loadDocker(dir);
  if (!state.daemon) return [500, { message: 'daemon is not running' }];
  if (state.swarm.state !== 'inactive') {
    return [503, { message: 'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.' }];
  }
  const faults = state.faults ?? {};
  if (faults.joinFailures > 0) {
    faults.joinFailures -= 1;
    saveDocker(dir, state);
    return [500, { message: 'rpc error: code = Unavailable desc = connection error' }];
  }
  const remote = Array.isArray(request.RemoteAddrs) ? request.RemoteAddrs : [];
  const swarms = readJson(path.join(cloud, 'swarms.json'), {});
  const found = Object.entries(swarms).find(([, s]) => remote.some((a) => s.managers.includes(a)));
  if (!found) {
    // Like dockerd: the join goes on in the background and the node stays pending until it leaves.
    state.swarm = { state: 'pending' };
    saveDocker(dir, state);
    return [500, { message: 'Timeout was reached before node joined. The attempt to join the swarm will continue in the background.' }];
  }
  const [id, swarm] = found;
  let role;
  if (request.JoinToken === swarm.workerToken) role = 'worker';
  else if (request.JoinToken === swarm.managerToken) role = 'manager';
  else return [400, { message: 'rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster' }];
  const nodeId = b36(25);
  if (role === 'manager') swarm.managers.push(`${request.AdvertiseAddr}:2377`);
  else swarm.workers.push(request.AdvertiseAddr);
  // The engine labels travel with the join: managers see them in `docker node inspect`.
  swarm.nodes = [...(swarm.nodes ?? []), newSwarmNode(nodeId, role, `${request.AdvertiseAddr}:2377`, state)];
  writeJson(path.join(cloud, 'swarms.json'), swarms);
  state.swarm = {
    state: 'active',
    controlAvailable: role === 'manager',
    clusterId: id,
    nodeId,
    nodeAddr: request.AdvertiseAddr,
    remoteManagers: [...swarm.managers],
  };
  if (faults.joinLate) {
    faults.joinLate = false;
    saveDocker(dir, state);
    return [500, { message: 'context deadline exceeded' }];
  }
  saveDocker(dir, state);
  return [200, null];
}

// ---------- docker ----------
function docker(argv) {
  const dir = nodeDir();
  const state = loadDocker(dir);
  const down = () =>
    fail('Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?', 1);
  const [cmd, ...rest] = argv;
  if (cmd === 'info') {
    if (!state.daemon) down();
    const s = state.swarm;
    if (rest.length === 0) {
      out(`Server:\n Swarm: ${s.state}\n`);
      return;
    }
    if (rest.length !== 2 || rest[0] !== '--format') fail(`fake docker: unsupported: info ${rest.join(' ')}`, 2);
    const formats = {
      '{{.Swarm.LocalNodeState}}': () => s.state,
      '{{.Swarm.ControlAvailable}}': () => String(Boolean(s.controlAvailable)),
      '{{.Swarm.NodeAddr}}': () => s.nodeAddr ?? '',
      '{{.Swarm.Cluster.ID}}': () => (s.controlAvailable ? s.clusterId : ''),
      '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.Cluster.ID}}': () => `${s.state} ${Boolean(s.controlAvailable)} ${s.controlAvailable ? s.clusterId : ''}`,
      '{{.Swarm.NodeID}}': () => s.nodeId ?? '',
      '{{json .Labels}}': () => JSON.stringify(state.labels ?? []),
      '{{range .Swarm.RemoteManagers}}{{.Addr}} {{end}}': () => (s.remoteManagers ?? []).map((a) => `${a} `).join(''),
    };
    const f = formats[rest[1]];
    if (!f) fail(`fake docker: unsupported format ${rest[1]}`, 2);
    out(`${f()}\n`);
    return;
  }
  if (cmd === 'node') {
    if (!state.daemon) down();
    nodeCommand(state, rest);
    return;
  }
  if (cmd === 'swarm') {
    if (!state.daemon) down();
    const [sub, ...args] = rest;
    if (sub === 'init') {
      const i = args.indexOf('--advertise-addr');
      const p = args.indexOf('--default-addr-pool');
      const m = args.indexOf('--default-addr-pool-mask-length');
      if (i < 0 || p < 0 || m < 0 || args.length !== 6) fail(`fake docker: unsupported: swarm init ${args.join(' ')}`, 2);
      if (state.swarm.state !== 'inactive') {
        fail('Error response from daemon: This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.', 1);
      }
      initSwarm(cloudDir(), state, args[i + 1], `${args[p + 1]}/${args[m + 1]}`);
      saveDocker(dir, state);
      const swarm = readJson(path.join(cloudDir(), 'swarms.json'), {})[state.swarm.clusterId];
      // Like dockerd: the join command, token included, goes to stdout. Scripts must not let it reach a log.
      out(
        `Swarm initialized: current node (${b36(25)}) is now a manager.\n\nTo add a worker to this swarm, run the following command:\n\n` +
          `    docker swarm join --token ${swarm.workerToken} ${args[i + 1]}:2377\n\n`,
      );
      return;
    }
    if (sub === 'join-token') {
      const rotate = args[0] === '--rotate';
      const rest = rotate ? args.slice(1) : args;
      if (rest.length !== 2 || rest[0] !== '-q' || !['worker', 'manager'].includes(rest[1])) {
        fail(`fake docker: unsupported: swarm join-token ${args.join(' ')}`, 2);
      }
      if (!state.swarm.controlAvailable) {
        fail("Error response from daemon: This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state.", 1);
      }
      if (readJson(path.join(cloudDir(), 'swarms.json'), {})[state.swarm.clusterId]?.noLeader) fail(NO_LEADER, 1);
      if (rotate) {
        const all = readJson(path.join(cloudDir(), 'swarms.json'), {});
        all[state.swarm.clusterId][`${rest[1]}Token`] = newToken();
        writeJson(path.join(cloudDir(), 'swarms.json'), all);
      }
      args.splice(0, args.length, ...rest);
      const swarm = readJson(path.join(cloudDir(), 'swarms.json'), {})[state.swarm.clusterId];
      out(`${args[1] === 'worker' ? swarm.workerToken : swarm.managerToken}\n`);
      return;
    }
    if (sub === 'leave') {
      if (state.swarm.state === 'inactive') fail('Error response from daemon: This node is not part of a swarm', 1);
      if (state.swarm.controlAvailable && !args.includes('--force')) fail('Error response from daemon: You are attempting to leave the swarm on a node that is participating as a manager.', 1);
      state.swarm = { state: 'inactive' };
      saveDocker(dir, state);
      out('Node left the swarm.\n');
      return;
    }
  }
  if (cmd === 'service') {
    if (!state.daemon) down();
    if (!state.swarm.controlAvailable) fail("Error response from daemon: This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state.", 1);
    const [sub, ...args] = rest;
    // The services a test gives this manager: docker.json `services` = [{name, image}].
    const services = state.services ?? [];
    if (sub === 'ls' && args.join(' ') === '--format {{.Name}} {{.Image}}') {
      out(services.map((x) => `${x.name} ${x.image}\n`).join(''));
      return;
    }
    if (sub === 'update' && args.length === 4 && args.slice(0, 3).join(' ') === '--detach --quiet --with-registry-auth') {
      const svc = services.find((x) => x.name === args[3]) ?? fail(`Error: no such service: ${args[3]}`, 1);
      svc.authRefreshes = (svc.authRefreshes ?? 0) + 1;
      saveDocker(dir, state);
      return;
    }
  }
  fail(`fake docker: unsupported: ${argv.join(' ')}`, 2);
}

/** What a manager says while its swarm has no leader (swarms.json `noLeader: true`: a majority of managers is lost). */
const NO_LEADER =
  "Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.";

// The formats scripts/node/reconcile.sh uses (kept verbatim: a changed format fails loudly here).
const T = '{{"\\t"}}';
const OBSERVE_FORMAT = `{{.ID}}${T}{{.Spec.Role}}${T}{{.Status.State}}${T}{{.Spec.Availability}}${T}{{with .ManagerStatus}}{{.Reachability}}${T}{{.Leader}}${T}{{.Addr}}{{else}}-${T}-${T}-{{end}}${T}{{index .Description.Engine.Labels "ec2-swarm.instance-id"}}`;
const ADDR_FORMAT = '{{with .ManagerStatus}}{{.Reachability}} {{.Addr}}{{end}}';

function nodeCommand(state, argv) {
  const notManager = () => fail("Error response from daemon: This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state.", 1);
  if (!state.swarm.controlAvailable) notManager();
  const file = path.join(cloudDir(), 'swarms.json');
  const swarms = readJson(file, {});
  const swarm = swarms[state.swarm.clusterId];
  if (swarm.noLeader) fail(NO_LEADER, 1);
  const [sub, ...args] = argv;
  const find = (id) => swarm.nodes.find((n) => n.id === id) ?? fail(`Error response from daemon: node ${id} not found`, 1);
  const label = (n) => (n.labels.find((l) => l.startsWith('ec2-swarm.instance-id=')) ?? '').split('=')[1] ?? '';
  if (sub === 'ls') {
    const ok = args.join(' ') === '-q' || args.join(' ') === '-q --filter role=manager';
    if (!ok) fail(`fake docker: unsupported: node ls ${args.join(' ')}`, 2);
    const nodes = args.length > 1 ? swarm.nodes.filter((n) => n.role === 'manager') : swarm.nodes;
    out(nodes.map((n) => `${n.id}\n`).join(''));
    return;
  }
  if (sub === 'inspect') {
    const f = args.indexOf('--format');
    if (f < 0 || f !== args.length - 2) fail(`fake docker: unsupported: node inspect ${args.join(' ')}`, 2);
    const format = args[f + 1];
    const nodes = args.slice(0, f).map((id) => (id === 'self' ? find(state.swarm.nodeId) : find(id)));
    const line = (n) => {
      const m = n.role === 'manager';
      if (format === ADDR_FORMAT) return m ? `${n.reachability} ${n.addr}` : '';
      if (format === OBSERVE_FORMAT) {
        return [n.id, n.role, n.status, n.availability, ...(m ? [n.reachability, String(n.leader), n.addr] : ['-', '-', '-']), label(n)].join('\t');
      }
      return fail(`fake docker: unsupported format ${format}`, 2);
    };
    out(nodes.map((n) => `${line(n)}\n`).join(''));
    return;
  }
  if (sub === 'ps') {
    if (args.length !== 3 || args[1] !== '--format' || args[2] !== '{{.CurrentState}}') fail(`fake docker: unsupported: node ps ${args.join(' ')}`, 2);
    const n = find(args[0]);
    out(Array.from({ length: n.runningTasks }, () => 'Running 2 minutes ago\n').join(''));
    out(n.availability === 'drain' ? 'Shutdown 1 second ago\n' : '');
    return;
  }
  if (sub === 'update' && args.length === 3 && args[0] === '--availability') {
    find(args[2]).availability = args[1];
  } else if (sub === 'demote' && args.length === 1) {
    const n = find(args[0]);
    const managers = swarm.nodes.filter((x) => x.role === 'manager');
    if (managers.length === 1) fail('Error response from daemon: rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm', 1);
    n.role = 'worker';
    n.reachability = undefined;
    swarm.managers = swarm.managers.filter((a) => a !== n.addr);
  } else if (sub === 'rm' && args.length === 1) {
    const n = find(args[0]);
    if (n.status !== 'down') fail(`Error response from daemon: rpc error: code = FailedPrecondition desc = node ${n.id} is not down and can't be removed`, 1);
    if (n.role === 'manager') fail(`Error response from daemon: rpc error: code = FailedPrecondition desc = node ${n.id} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal`, 1);
    swarm.nodes = swarm.nodes.filter((x) => x !== n);
  } else {
    fail(`fake docker: unsupported: node ${argv.join(' ')}`, 2);
  }
  writeJson(file, swarms);
  out(`${args[args.length - 1]}\n`);
}

// ---------- aws ----------
const VALUE_OPTS = new Set(['--region', '--query', '--output', '--cli-connect-timeout', '--cli-read-timeout', '--endpoint-url']);
const FLAG_OPTS = new Set(['--no-cli-pager']);

function awsError(code, operation, message) {
  fail(`\nAn error occurred (${code}) when calling the ${operation} operation: ${message}`, 254);
}

const OPS = { autoscaling: ['describe-auto-scaling-instances', 'complete-lifecycle-action'], ec2: ['describe-instances'] };
const ASG_OPTS = new Set(['--lifecycle-hook-name', '--auto-scaling-group-name', '--instance-id', '--lifecycle-action-result']);

function aws(argv) {
  const [service, op, ...rest] = argv;
  if (!(OPS[service] ?? []).includes(op)) fail(`fake aws: unsupported: ${argv.slice(0, 2).join(' ')}`, 2);
  const o = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--instance-ids') {
      o[a] = [];
      while (i + 1 < rest.length && !rest[i + 1].startsWith('--')) o[a].push(rest[++i]);
    } else if ((VALUE_OPTS.has(a) || ASG_OPTS.has(a)) && i + 1 < rest.length) o[a] = rest[++i];
    else if (FLAG_OPTS.has(a)) o[a] = true;
    else fail(`fake aws: unsupported option ${a}`, 2);
  }
  if (!o['--region'] && !call.env.AWS_REGION && !call.env.AWS_DEFAULT_REGION) {
    fail('You must specify a region. You can also configure your region by running "aws configure".', 253);
  }
  ec2(service, op, o);
}

/**
 * EC2 and Auto Scaling, from ec2.json: { instances: { id: { state, group?, lifecycle? } }, completed: [...] }.
 * Only the calls and --query forms reconcile.sh makes; unknown instance → InvalidInstanceID.NotFound.
 */
function ec2(service, op, o) {
  const file = path.join(cloudDir(), 'ec2.json');
  const store = readJson(file, { instances: {}, completed: [] });
  if (op === 'describe-auto-scaling-instances') {
    if (o['--query'] !== 'AutoScalingInstances[].[InstanceId,AutoScalingGroupName,LifecycleState]' || o['--output'] !== 'text') fail('fake aws: unsupported query', 2);
    const ids = o['--instance-ids'] ?? [];
    if (ids.length > 50) awsError('ValidationError', 'DescribeAutoScalingInstances', 'at most 50 instance ids');
    const rows = ids.filter((id) => store.instances[id]?.group).map((id) => `${id}\t${store.instances[id].group}\t${store.instances[id].lifecycle ?? 'InService'}\n`);
    out(rows.join(''));
    return;
  }
  if (op === 'complete-lifecycle-action') {
    const id = o['--instance-id'];
    const i = store.instances[id];
    if (!i || i.group !== o['--auto-scaling-group-name'] || i.lifecycle !== 'Terminating:Wait') {
      awsError('ValidationError', 'CompleteLifecycleAction', `No active Lifecycle Action found with instance ID ${id}`);
    }
    i.lifecycle = 'Terminating:Proceed';
    store.completed.push({ instanceId: id, group: o['--auto-scaling-group-name'], hook: o['--lifecycle-hook-name'], result: o['--lifecycle-action-result'] });
    writeJson(file, store);
    return;
  }
  // ec2 describe-instances
  if (o['--query'] !== 'Reservations[].Instances[].State.Name' || o['--output'] !== 'text') fail('fake aws: unsupported query', 2);
  const missing = (o['--instance-ids'] ?? []).filter((id) => !store.instances[id]);
  if (missing.length) awsError('InvalidInstanceID.NotFound', 'DescribeInstances', `The instance IDs '${missing.join(', ')}' do not exist`);
  out(`${o['--instance-ids'].map((id) => store.instances[id].state).join('\t')}\n`);
}

// ---------- dnf, systemctl ----------
function dnf(argv) {
  if (argv[0] !== 'install' || !argv.includes('-y')) fail(`fake dnf: unsupported: ${argv.join(' ')}`, 2);
  const dir = nodeDir();
  for (const pkg of argv.slice(1).filter((a) => a !== '-y')) {
    if (pkg === 'docker') {
      const state = loadDocker(dir);
      if (!state.installed) {
        state.installed = true;
        state.daemon = false; // a fresh package is installed, not started
        saveDocker(dir, state);
        writeWrapper(path.join(dir, 'bin'), 'docker');
      }
    } else if (pkg === 'amazon-ecr-credential-helper') {
      writeWrapper(path.join(dir, 'bin'), 'docker-credential-ecr-login');
    } else if (pkg === 'aws-cfn-bootstrap') {
      const target = path.join(dir, 'opt/aws/bin/cfn-signal');
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.renameSync(writeWrapper(path.join(dir, 'bin'), 'cfn-signal'), target);
    }
  }
  out('Complete!\n');
}

function systemctl(argv) {
  const dir = nodeDir();
  if (argv.join(' ') === 'enable --now docker') {
    const state = loadDocker(dir);
    if (!state.installed) fail('Failed to enable unit: Unit file docker.service does not exist.', 1);
    state.daemon = true;
    saveDocker(dir, loadDaemonConfig(state));
    return;
  }
  if (argv.join(' ') === 'daemon-reload') return;
  if (argv.join(' ') === 'reload docker') {
    const state = loadDocker(dir);
    if (!state.daemon) fail('Job for docker.service failed: docker.service is not active.', 1);
    saveDocker(dir, loadDaemonConfig(state));
    return;
  }
  if (argv.length === 2 && ['enable', 'restart', 'stop'].includes(argv[0]) && argv[1] !== 'docker') {
    const unit = path.join(call.env.SWARM_SYSTEMD_DIR ?? '/nonexistent', argv[1]);
    if (!fs.existsSync(unit)) fail(`Failed to ${argv[0]} unit: Unit file ${argv[1]} does not exist.`, 1);
    return;
  }
  if (argv.length === 3 && argv[0] === 'enable' && argv[1] === '--now' && argv[2] !== 'docker') {
    // Only units the script wrote into SWARM_SYSTEMD_DIR exist (the sandbox points it into the node dir).
    const unit = path.join(call.env.SWARM_SYSTEMD_DIR ?? '/nonexistent', argv[2]);
    if (!fs.existsSync(unit)) fail(`Failed to enable unit: Unit file ${argv[2]} does not exist.`, 1);
    return;
  }
  if (argv.join(' ') === 'list-jobs') {
    const jobs = readJson(path.join(dir, 'systemd.json'), { jobs: [] }).jobs;
    out(jobs.length ? `JOB UNIT TYPE STATE\n${jobs.map((j, i) => `${i + 1} ${j} start waiting\n`).join('')}` : 'No jobs running.\n');
    return;
  }
  fail(`fake systemctl: unsupported: ${argv.join(' ')}`, 2);
}

/** Variables of the calling script the stand-ins read; the wrapper forwards those that are set. */
const FORWARDED_ENV = ['FAKE_CLOUD_DIR', 'FAKE_NODE_DIR', 'FAKE_NODE_NAME', 'AWS_REGION', 'AWS_DEFAULT_REGION',
  'SWARM_DOCKER_CONFIG', 'SWARM_SYSTEMD_DIR'];

/**
 * Write `tool` into binDir: a bash script that sends its call to the ToolServer on 127.0.0.1:`port` as
 * NUL-terminated fields (count, tool, cwd, number of env entries, NAME=value..., argv...) and replays the answer
 * (exit code, stdout, stderr; each NUL-terminated). Only bash builtins: no process is started per call.
 * `curl`'s wrapper, once its call is recorded, runs the real curl (the node's sysbin/curl) with the same argv.
 */
function writeWrapper(binDir, tool, port = call.port) {
  if (!Number.isInteger(port) || !/^[a-z][a-z-]*$/.test(tool)) throw new Error(`writeWrapper: bad tool ${tool} or port ${port}`);
  const file = path.join(binDir, tool);
  const script = `#!/bin/bash
# fake ${tool}: served by the ToolServer of a test's fake cloud (test/node-scripts/stubs/tools.js)
env=()
for v in ${FORWARDED_ENV.join(' ')}; do [ -n "\${!v+x}" ] && env+=("$v=\${!v}"); done
exec 3<>/dev/tcp/127.0.0.1/${port} || { echo 'fake ${tool}: the stand-in server is not running' >&2; exit 3; }
printf '%s\\0' "$((3 + \${#env[@]} + $#))" ${tool} "$PWD" "\${#env[@]}" "\${env[@]}" "$@" >&3
IFS= read -r -d '' code <&3 && IFS= read -r -d '' out <&3 && IFS= read -r -d '' err <&3 ||
  { echo 'fake ${tool}: no answer from the stand-in server' >&2; exit 3; }
printf '%s' "$out"
printf '%s' "$err" >&2
${tool === 'curl' ? '[ "$code" = 0 ] || exit "$code"\nexec "$FAKE_NODE_DIR/sysbin/curl" "$@"' : 'exit "$code"'}
`;
  fs.writeFileSync(file, script, { mode: 0o755 });
  return file;
}

/** `cfn-signal` only records its argv (calls.jsonl): tests read the exit code it was given from `-e`. */
function cfnSignal() {}

/** The fake dockerd's SIGHUP handler (sandbox.ts): reload daemon.json like dockerd does. */
function dockerdReload() {
  const dir = nodeDir();
  saveDocker(dir, loadDaemonConfig(loadDocker(dir)));
}

/** The ECR credential helper (installed by `dnf install -y amazon-ecr-credential-helper`): only recorded. */
function ecrLogin() {}

/**
 * curl: only recorded here (with `modes`: the octal mode of each file named by -K/--config or --data-binary/--data/-d
 * @FILE, so tests can assert keys and tokens reach curl only through 0600 files); its wrapper then runs the real curl.
 */
function curlModes(argv) {
  const modes = [];
  argv.forEach((a, i) => {
    const prev = argv[i - 1];
    let file;
    if (prev === '-K' || prev === '--config') file = a;
    else if (['--data-binary', '--data', '-d'].includes(prev) && a.startsWith('@') && a !== '@-') file = a.slice(1);
    if (file === undefined) return;
    try {
      modes.push((fs.statSync(path.resolve(call.cwd, file)).mode & 0o7777).toString(8));
    } catch {
      /* no such file: no mode, as stat(1) prints none */
    }
  });
  return modes;
}
function curl() {}

const TOOLS = { aws, docker, dnf, systemctl, curl, 'cfn-signal': cfnSignal, 'dockerd-reload': dockerdReload, 'docker-credential-ecr-login': ecrLogin };

/** Run one stand-in call as the wrapper reported it. Never throws: a stand-in bug is exit 1 with its stack. */
function runTool(tool, argv, env, cwd, port) {
  call = { env, cwd, port, stdout: '', stderr: '' };
  let code = 0;
  try {
    if (!TOOLS[tool]) fail(`fake tools: unknown tool ${tool}`, 2);
    record(tool, argv, tool === 'curl' ? { modes: curlModes(argv) } : {});
    TOOLS[tool](argv);
  } catch (e) {
    if (e instanceof ToolExit) code = e.code;
    else {
      call.stderr += `fake ${tool}: stand-in failed: ${e.stack}\n`;
      code = 1;
    }
  }
  const result = { code, stdout: call.stdout, stderr: call.stderr };
  call = undefined;
  return result;
}

/**
 * Serves the wrappers of one fake cloud on 127.0.0.1 (an ephemeral port). Each connection carries one call; it
 * is answered synchronously, so calls never interleave.
 */
class ToolServer {
  static async start() {
    const s = new ToolServer();
    await new Promise((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(0, '127.0.0.1', resolve);
    });
    s.port = s.server.address().port;
    return s;
  }

  constructor() {
    this.port = 0;
    this.sockets = new Set();
    this.server = net.createServer((socket) => this.serve(socket));
  }

  serve(socket) {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buf = Buffer.alloc(0);
    let answered = false;
    socket.on('data', (chunk) => {
      if (answered) return;
      buf = Buffer.concat([buf, chunk]);
      const fields = [];
      for (let at = 0; ; ) {
        const nul = buf.indexOf(0, at);
        if (nul < 0) break;
        fields.push(buf.subarray(at, nul).toString('utf8'));
        at = nul + 1;
      }
      if (fields.length === 0) return;
      const want = Number(fields[0]);
      if (!Number.isInteger(want) || want < 3) return socket.destroy(); // not a wrapper
      if (fields.length < want + 1) return; // the rest of the call is still on its way
      answered = true;
      const [, tool, cwd, n, ...rest] = fields;
      const env = Object.fromEntries(rest.slice(0, Number(n)).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      const r = runTool(tool, rest.slice(Number(n)), env, cwd, this.port);
      socket.end(`${r.code}\0${r.stdout}\0${r.stderr}\0`);
    });
  }

  async close() {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}

module.exports = { TOOLS: Object.keys(TOOLS), ToolServer, runTool, writeWrapper, joinSwarm, initSwarm, loadDaemonConfig, loadDocker, saveDocker, defaultDockerState, readJson, writeJson, newToken };
