import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { Service } from 'kubernetes-models/v1/Service';
import { Registry } from 'prom-client';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { CONFIG_VARIABLES, type Config, loadConfig } from '../../core/config.ts';
import { registerQueueGauges } from '../../queues/metrics.ts';
import type { QueueSet } from '../../queues/queue-set.ts';
import { type QueueName, queueNames } from '../../queues/registry.ts';
import { bridge } from '../../roles/bridge.ts';
import { gateway } from '../../roles/gateway.ts';
import { scheduler } from '../../roles/scheduler.ts';
import { httpPort, queueConcurrency, type RoleSpec } from '../../roles/spec.ts';
import { worker } from '../../roles/worker.ts';
import { leakCheck } from '../helpers/leak-check.ts';

leakCheck(t);

/**
 * docker/k8s, checked offline: every document against the Kubernetes (1.27) and KEDA schemas
 * of kubernetes-models, with fields the schema does not know refused too, and the references
 * between documents and into the code (roles, ports, config variables, queue keys, metric
 * names) followed, so a renamed variable, port or queue breaks this test, not a cluster.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const K8S = path.join(ROOT, 'docker/k8s');

type Json = Record<string, unknown>;
type ModelClass = { new (data: Json): { validate(): void }; prototype: { validate(): void } };

/** Every kind the manifests may use; anything else fails (no document goes unchecked). */
const MODELS: Record<string, ModelClass> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'batch/v1/CronJob': CronJob,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
} as unknown as Record<string, ModelClass>;

const ROLE_SPECS: Record<string, RoleSpec> = { gateway, worker, scheduler, bridge };

interface Manifest {
  file: string;
  kind: string;
  name: string;
  doc: Json;
}

/**
 * The schema validators read every property they know by name and enumerate only maps, so a
 * key never read and in no enumerated object is one the schema does not have (a typo that
 * Kubernetes would drop silently, or reject with strict field validation).
 */
function unknownFields(model: ModelClass, data: Json): string[] {
  const read = new Map<string, Set<string>>();
  const enumerated = new Set<string>();
  const track = (value: unknown, at: string): unknown => {
    if (value === null || typeof value !== 'object') return value;
    read.set(at, read.get(at) ?? new Set());
    return new Proxy(value, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver);
        if (typeof key !== 'string' || !Object.hasOwn(target, key)) return v;
        read.get(at)?.add(key);
        return track(v, `${at}/${key}`);
      },
      ownKeys(target) {
        enumerated.add(at);
        return Reflect.ownKeys(target);
      },
    });
  };
  model.prototype.validate.call(track(data, ''));
  const unknown: string[] = [];
  const walk = (value: unknown, at: string) => {
    if (value === null || typeof value !== 'object') return;
    for (const [key, child] of Object.entries(value)) {
      if (!Array.isArray(value) && !enumerated.has(at) && !read.get(at)?.has(key))
        unknown.push(`${at}/${key}`);
      walk(child, `${at}/${key}`);
    }
  };
  walk(data, '');
  return unknown;
}

const yamlFiles = readdirSync(K8S)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();

/** Parsed as Kubernetes parses (YAML 1.1): an unquoted yes or on is a boolean there. */
function parseFile(file: string): Json[] {
  const docs = parseAllDocuments(readFileSync(path.join(K8S, file), 'utf8'), { version: '1.1' });
  if (!Array.isArray(docs)) return [];
  return docs.map((doc, i) => {
    const problems = [...doc.errors, ...doc.warnings].map((e) => e.message);
    if (problems.length > 0) throw new Error(`${file} document ${i + 1}: ${problems.join('; ')}`);
    return doc.toJS() as Json;
  });
}

const manifests: Manifest[] = [];
const kustomization = parseFile('kustomization.yaml')[0] as {
  namespace: string;
  resources: string[];
  secretGenerator: Array<{ name: string; envs: string[] }>;
};

t.test('every document is a known kind that its schema accepts, without unknown fields', async (t) => {
  for (const file of yamlFiles.filter((f) => f !== 'kustomization.yaml')) {
    const docs = parseFile(file);
    t.ok(docs.length > 0, `${file} has documents`);
    for (const doc of docs) {
      const kind = `${doc.apiVersion}/${doc.kind}`;
      const name = String((doc.metadata as Json | undefined)?.name);
      const model = MODELS[kind];
      if (!model) {
        t.fail(`${file}: ${kind} is not a kind this test knows; add its kubernetes-models class`);
        continue;
      }
      t.doesNotThrow(() => new model(doc).validate(), `${file}: ${kind} ${name} is valid`);
      t.same(unknownFields(model, doc), [], `${file}: ${kind} ${name} has no field its schema lacks`);
      manifests.push({ file, kind: String(doc.kind), name, doc });
    }
  }
  t.ok(manifests.length >= 12, `${manifests.length} documents checked`);
});

const all = (kind: string) => manifests.filter((m) => m.kind === kind);
const one = (kind: string, name: string) => {
  const found = manifests.find((m) => m.kind === kind && m.name === name);
  if (!found) throw new Error(`no ${kind} named ${name}`);
  return found;
};
const deployments = () => all('Deployment').map((m) => m.doc as unknown as IDeployment);
const configMap = () => (one('ConfigMap', 'dockhand-config').doc.data ?? {}) as Record<string, string>;

/** The secret's keys and example values (secret.env.example): empty means the operator fills it. */
function secretExample(): Record<string, string> {
  const lines = readFileSync(path.join(K8S, 'secret.env.example'), 'utf8').split('\n');
  const entries = lines
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const);
  return Object.fromEntries(entries);
}

t.test('kustomization: its files exist, the rest are alternatives the docs name', async (t) => {
  const docs = readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');
  t.equal(kustomization.namespace, 'dockhand');
  for (const file of kustomization.resources) t.ok(yamlFiles.includes(file), `${file} exists`);
  for (const file of yamlFiles.filter((f) => f !== 'kustomization.yaml')) {
    t.ok(docs.includes(file), `docs/deploy.md names ${file}`);
    if (!kustomization.resources.includes(file)) {
      t.match(readFileSync(path.join(K8S, 'kustomization.yaml'), 'utf8'), file, `${file}: an alternative`);
    }
  }
  const [secret] = kustomization.secretGenerator;
  t.same(secret, { name: 'dockhand-secrets', envs: ['secret.env'] });
  t.ok(Object.keys(secretExample()).length > 0, 'secret.env.example lists the keys');
  t.match(
    readFileSync(path.join(K8S, '.gitignore'), 'utf8'),
    /^\/secret\.env$/m,
    'secret.env stays out of git',
  );
  for (const m of manifests) {
    const ns = (m.doc.metadata as Json).namespace;
    if (m.kind === 'Namespace') t.equal(m.name, kustomization.namespace);
    else t.equal(ns, kustomization.namespace, `${m.kind} ${m.name} is in the namespace`);
  }
});

/** Every pod the manifests make: Deployments' and the CronJob's. */
const podsOf = (): Array<{ where: string; spec: IPodSpec }> => [
  ...deployments().map((d) => ({
    where: `Deployment ${d.metadata?.name}`,
    spec: d.spec?.template.spec as IPodSpec,
  })),
  ...all('CronJob').map((m) => ({
    where: `CronJob ${m.name}`,
    spec: (m.doc.spec as { jobTemplate: { spec: { template: { spec: IPodSpec } } } }).jobTemplate.spec
      .template.spec,
  })),
];
const selects = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
  Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v) && Object.keys(selector ?? {}).length > 0;
const deploymentSelected = (selector: Record<string, string> | undefined) =>
  deployments().filter((d) =>
    selects(selector, (d.spec?.template.metadata?.labels ?? {}) as Record<string, string>),
  );

/** What a container's process would find in its environment, secrets from the example. */
function containerEnv(c: IContainer): Record<string, string> {
  const env: Record<string, string> = {};
  const secrets = secretExample();
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, configMap());
  }
  for (const e of c.env ?? []) {
    const ref = e.valueFrom;
    if (e.value !== undefined) env[e.name] = e.value;
    // An empty example value is for the operator to fill: a stand-in that any variable accepts.
    else if (ref?.secretKeyRef) env[e.name] = secrets[ref.secretKeyRef.key] || 'stand-in-secret-0123456789';
    else if (ref?.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = 'node-1';
    else if (ref?.fieldRef?.fieldPath === 'status.hostIP') env[e.name] = '10.0.0.7';
    else throw new Error(`${e.name}: a source this test does not know`);
  }
  return env;
}

t.test(
  'every variable a container gets is one core/config.ts reads, from a source that exists',
  async (t) => {
    for (const key of Object.keys(configMap()))
      t.ok(CONFIG_VARIABLES.includes(key), `ConfigMap ${key} is read`);
    const secrets = secretExample();
    for (const { where, spec } of podsOf()) {
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        for (const e of c.env ?? []) {
          t.ok(CONFIG_VARIABLES.includes(e.name), `${where}/${c.name}: ${e.name} is read by core/config.ts`);
          const secret = e.valueFrom?.secretKeyRef;
          if (secret) {
            t.equal(secret.name, 'dockhand-secrets', `${where}/${c.name}: ${e.name} from dockhand-secrets`);
            t.ok(secret.key in secrets, `${where}/${c.name}: ${secret.key} is in secret.env.example`);
          }
        }
        for (const from of c.envFrom ?? []) {
          t.equal(from.configMapRef?.name, 'dockhand-config', `${where}/${c.name} reads dockhand-config`);
          t.notOk(from.secretRef, `${where}/${c.name}: secrets one by one, only those it needs`);
        }
      }
    }
  },
);

/** Each Dockhand process: its role, its container, and the config it would load. */
function dockhandContainers(): Array<{ where: string; role: string; c: IContainer; config: Config }> {
  return deployments().flatMap((d) =>
    (d.spec?.template.spec?.containers ?? []).map((c) => {
      const role = c.args?.[0] ?? '';
      return { where: `Deployment ${d.metadata?.name}`, role, c, config: loadConfig(containerEnv(c)) };
    }),
  );
}

t.test('each Dockhand container starts: its role, its config, its port and its probes', async (t) => {
  const roles = new Set<string>();
  for (const d of deployments()) {
    for (const c of d.spec?.template.spec?.containers ?? []) {
      const role = c.args?.[0] ?? '';
      t.ok(ROLE_SPECS[role], `${d.metadata?.name}: runs the ${role} role`);
      t.doesNotThrow(
        () => loadConfig(containerEnv(c)),
        `${d.metadata?.name}: its environment is a valid config`,
      );
    }
  }
  for (const { where, role, c, config } of dockhandContainers()) {
    roles.add(role);
    const spec = ROLE_SPECS[role] as RoleSpec;
    t.notOk(
      ['127.0.0.1', 'localhost', '::1'].includes(config.server.host),
      `${where}: listens beyond loopback`,
    );
    const port = httpPort(spec, config);
    const ports = c.ports ?? [];
    t.same(
      ports.map((p) => p.containerPort),
      [port],
      `${where}: declares the port the ${role} role listens on (${port})`,
    );
    const expect = { startupProbe: '/health', livenessProbe: '/health', readinessProbe: '/ready' } as const;
    for (const [probe, pathWanted] of Object.entries(expect)) {
      const get = c[probe as keyof typeof expect]?.httpGet;
      t.equal(get?.path, pathWanted, `${where}: ${probe} asks ${pathWanted}`);
      const named = ports.find((p) => p.name === get?.port || p.containerPort === get?.port);
      t.equal(named?.containerPort, port, `${where}: ${probe} goes to the port it listens on`);
    }
  }
  t.same([...roles].sort(), ['bridge', 'gateway', 'scheduler', 'worker'], 'a Deployment for each role');
});

t.test('pods: resources, the same image, hardened containers, hostPath only for workers', async (t) => {
  const images = new Set<string>();
  for (const { where, spec } of podsOf()) {
    t.equal(spec.automountServiceAccountToken, false, `${where}: no Kubernetes API token`);
    const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      images.add(String(c.image));
      for (const resource of ['cpu', 'memory']) {
        t.ok(c.resources?.requests?.[resource], `${where}/${c.name}: requests ${resource}`);
        t.ok(c.resources?.limits?.[resource], `${where}/${c.name}: limits ${resource}`);
      }
      const sc = c.securityContext;
      t.equal(sc?.allowPrivilegeEscalation, false, `${where}/${c.name}: no privilege escalation`);
      t.equal(sc?.readOnlyRootFilesystem, true, `${where}/${c.name}: read-only root filesystem`);
      t.same(sc?.capabilities?.drop, ['ALL'], `${where}/${c.name}: capabilities dropped`);
      t.notOk(sc?.privileged, `${where}/${c.name}: not privileged`);
      for (const mount of c.volumeMounts ?? []) {
        t.ok(volumes.has(mount.name), `${where}/${c.name}: volume ${mount.name} exists`);
      }
    }
    const hostPaths = (spec.volumes ?? []).filter((v) => v.hostPath);
    if (!where.includes('worker')) t.same(hostPaths, [], `${where}: no hostPath`);
    for (const v of spec.volumes ?? []) {
      if (v.persistentVolumeClaim) {
        t.ok(one('PersistentVolumeClaim', v.persistentVolumeClaim.claimName), `${where}: its claim exists`);
      }
    }
  }
  t.equal(images.size, 1, `one image for every container (dh-init comes from it too): ${[...images]}`);
});

t.test('workers: the node paths the Docker engine binds are the same inside the pod', async (t) => {
  const d = one('Deployment', 'dockhand-worker').doc as unknown as IDeployment;
  const spec = d.spec?.template.spec as IPodSpec;
  const c = spec.containers.find((x) => x.name === 'worker') as IContainer;
  const config = loadConfig(containerEnv(c));
  const hostPathAt = (mountPath: string) => {
    const mount = c.volumeMounts?.find((m) => m.mountPath === mountPath);
    return spec.volumes?.find((v) => v.name === mount?.name)?.hostPath?.path;
  };
  t.equal(hostPathAt(config.storage.dataDir), config.storage.dataDir, 'DATA_DIR (exec workspaces)');
  t.ok(config.exec.workspaceDir.startsWith(config.storage.dataDir), 'workspaces are made under it');
  // Where the image keeps dh-init: the Dockerfile's WORKDIR plus the built path.
  const dockerfile = readFileSync(path.join(ROOT, 'docker/Dockerfile'), 'utf8');
  const workdir = [...dockerfile.matchAll(/^WORKDIR (\S+)$/gm)].at(-1)?.[1] as string;
  const copied = /^COPY --from=exec-init \S+ (\S+)$/m.exec(dockerfile)?.[1] as string;
  const initInImage = path.resolve(workdir, copied);
  t.equal(initInImage, '/app/.build/dh-init');
  t.equal(path.relative(ROOT, path.join(ROOT, copied)), '.build/dh-init', 'the path exec-runner.ts binds');
  t.equal(hostPathAt(path.dirname(initInImage)), path.dirname(initInImage), 'dh-init on the node, same path');
  t.equal(hostPathAt('/var/run/docker.sock'), '/var/run/docker.sock', 'the engine createDocker() uses');
  t.equal(config.docker.host, undefined, 'DOCKER_HOST unset: the local socket');
  t.equal(hostPathAt('/sys/fs/cgroup'), '/sys/fs/cgroup', 'cgroups for per-call peak memory and CPU');
  t.equal(config.nodes.name, 'node-1', 'NODE_NAME is the Kubernetes node');
  t.equal(config.nodes.ip, '10.0.0.7', 'NODE_IP is the node address');
  t.notOk(config.server.apiKeys.length, 'a worker holds no API key');
  t.ok(config.nodes.registrationToken, 'it registers with NODE_REGISTRATION_TOKEN');
});

t.test('shutdown: every pod waits longer than Dockhand gives itself to stop', async (t) => {
  const cli = readFileSync(path.join(ROOT, 'scripts/cli.ts'), 'utf8');
  const delayMs = Number(/closeWithGrace\(\{ delay: ([\d_]+) \}/.exec(cli)?.[1]?.replaceAll('_', ''));
  t.ok(delayMs > 0, `scripts/cli.ts stops within ${delayMs} ms of SIGTERM`);
  for (const d of deployments()) {
    const spec = d.spec?.template.spec as IPodSpec;
    const preStop = spec.containers.some((c) => c.lifecycle?.preStop) ? 5 : 0;
    t.ok(
      (spec.terminationGracePeriodSeconds ?? 30) * 1000 > delayMs + preStop * 1000,
      `${d.metadata?.name}: ${spec.terminationGracePeriodSeconds} s`,
    );
  }
});

t.test('Service, PodDisruptionBudgets and NetworkPolicy select the pods they mean', async (t) => {
  const gatewayPod = one('Deployment', 'dockhand-gateway').doc as unknown as IDeployment;
  const gatewayPort = gatewayPod.spec?.template.spec?.containers[0]?.ports?.[0];
  for (const d of deployments()) {
    t.ok(
      selects(
        d.spec?.selector.matchLabels as Record<string, string>,
        d.spec?.template.metadata?.labels as Record<string, string>,
      ),
      `${d.metadata?.name}: its selector matches its pods`,
    );
  }
  const service = one('Service', 'dockhand-gateway').doc as {
    spec: { selector: Record<string, string>; ports: Array<{ port: number; targetPort: string }> };
  };
  t.same(
    deploymentSelected(service.spec.selector).map((d) => d.metadata?.name),
    ['dockhand-gateway'],
  );
  t.equal(service.spec.ports[0]?.targetPort, gatewayPort?.name, 'the Service targets the gateway port');
  for (const pdb of all('PodDisruptionBudget')) {
    const selector = (pdb.doc.spec as { selector: { matchLabels: Record<string, string> } }).selector
      .matchLabels;
    t.same(
      deploymentSelected(selector).map((d) => d.metadata?.name),
      [pdb.name],
      `PDB ${pdb.name}`,
    );
  }
  const policy = one('NetworkPolicy', 'dockhand-worker').doc.spec as {
    podSelector: { matchLabels: Record<string, string> };
    ingress: Array<{ ports: Array<{ port: number }> }>;
    egress: Array<{
      to: Array<{ podSelector?: { matchLabels: Record<string, string> } }>;
      ports: Array<{ port: number }>;
    }>;
  };
  t.same(
    deploymentSelected(policy.podSelector.matchLabels).map((d) => d.metadata?.name),
    ['dockhand-worker'],
  );
  const worker = dockhandContainers().find((x) => x.role === 'worker');
  t.same(
    policy.ingress.flatMap((r) => r.ports.map((p) => p.port)),
    [worker?.config.nodes.workerMetricsPort],
    'in: only the ops port',
  );
  const toGateway = policy.egress.find((r) =>
    r.to.some((p) => deploymentSelected(p.podSelector?.matchLabels).length),
  );
  t.same(
    deploymentSelected(toGateway?.to[0]?.podSelector?.matchLabels).map((d) => d.metadata?.name),
    ['dockhand-gateway'],
    'out: the control plane',
  );
  t.same(
    toGateway?.ports.map((p) => p.port),
    [gatewayPort?.containerPort],
  );
  const redisUrl = new URL(worker?.config.redis.url as string);
  const toRedis = policy.egress.find((r) =>
    r.to.some((p) => p.podSelector?.matchLabels['app.kubernetes.io/name'] === 'redis'),
  );
  t.same(
    toRedis?.ports.map((p) => p.port),
    [Number(redisUrl.port || 6379)],
    'out: Redis, on its port',
  );
  t.equal(policy.egress.length, 3, 'out: Redis, the control plane and DNS only');
});

t.test('workers and the tick find the control plane at the Service', async (t) => {
  const service = one('Service', 'dockhand-gateway').doc.spec as { ports: Array<{ port: number }> };
  const urls = podsOf().flatMap(({ where, spec }) =>
    spec.containers.flatMap((c) =>
      (c.env ?? []).filter((e) => e.name === 'CONTROL_PLANE_URL').map((e) => [where, e.value]),
    ),
  );
  t.ok(urls.length >= 2, 'the worker and the CronJob');
  for (const [where, value] of urls) {
    const url = new URL(String(value));
    t.equal(url.hostname, 'dockhand-gateway', `${where}: the Service name`);
    t.equal(Number(url.port), service.ports[0]?.port, `${where}: the Service port`);
  }
});

/** The gauge's series as Prometheus would scrape them, from a stand-in for the queues. */
async function queueGaugeSeries(): Promise<{
  name: string;
  labels: Array<Partial<Record<string, string | number>>>;
}> {
  const registry = new Registry();
  const fake = Object.fromEntries(
    queueNames.map((n) => [
      n,
      { getJobCounts: async (...states: string[]) => Object.fromEntries(states.map((s) => [s, 1])) },
    ]),
  ) as unknown as QueueSet;
  registerQueueGauges(registry, fake);
  const [metric] = await registry.getMetricsAsJSON();
  return { name: String(metric?.name), labels: (metric?.values ?? []).map((v) => v.labels) };
}

t.test('KEDA: one trigger per BullMQ key a worked queue keeps ready jobs in', async (t) => {
  const so = one('ScaledObject', 'dockhand-worker').doc.spec as {
    scaleTargetRef: { kind: string; name: string };
    minReplicaCount: number;
    triggers: Array<{ type: string; metadata: Record<string, string>; authenticationRef: { name: string } }>;
  };
  t.same([so.scaleTargetRef.kind, so.scaleTargetRef.name], ['Deployment', 'dockhand-worker']);
  one('Deployment', so.scaleTargetRef.name);
  t.ok(so.minReplicaCount >= 1, 'never zero workers: a sync call with none is refused at once');
  const worker = dockhandContainers().find((x) => x.role === 'worker');
  const config = worker?.config as Config;
  const concurrency = queueConcurrency(config);
  const redisUrl = new URL(config.redis.url);
  const keys = new Set<string>();
  for (const trigger of so.triggers) {
    const m = trigger.metadata;
    t.equal(trigger.type, 'redis');
    const match = new RegExp(
      `^${config.redis.prefix.replace(/[{}]/g, '\\$&')}:(.+):(wait|prioritized)$`,
    ).exec(m.listName ?? '');
    t.ok(match, `${m.listName}: <QUEUE_PREFIX>:<queue>:wait|prioritized`);
    const queue = match?.[1] as QueueName;
    t.ok(worker && ROLE_SPECS.worker?.queues.includes(queue), `${m.listName}: a queue workers run`);
    t.equal(m.listLength, String(concurrency[queue]), `${m.listName}: one worker's concurrency for ${queue}`);
    t.equal(m.address, `${redisUrl.hostname}.${kustomization.namespace}.svc:${redisUrl.port || 6379}`);
    t.equal(m.databaseIndex, String(Number(redisUrl.pathname.slice(1) || 0)), 'the database REDIS_URL names');
    t.equal(m.enableTLS, String(redisUrl.protocol === 'rediss:'), 'TLS as REDIS_URL');
    const auth = one('TriggerAuthentication', trigger.authenticationRef.name).doc.spec as {
      secretTargetRef: Array<{ parameter: string; name: string; key: string }>;
    };
    for (const ref of auth.secretTargetRef)
      t.ok(ref.key in secretExample(), `${ref.key} is in secret.env.example`);
    keys.add(`${queue}:${match?.[2]}`);
  }
  for (const queue of worker ? (ROLE_SPECS.worker?.queues ?? []) : [])
    t.ok(keys.has(`${queue}:wait`), `${queue}:wait`);
  t.ok(keys.has('exec:prioritized'), 'exec requests may carry a priority: their ZSET too');
  t.notOk(
    [...keys].some((k) => k.startsWith('scheduler:')),
    'the tick is no reason to add workers',
  );
});

t.test('HPA: the Prometheus gauge Dockhand exports, for the worker Deployment', async (t) => {
  const hpa = one('HorizontalPodAutoscaler', 'dockhand-worker').doc.spec as {
    scaleTargetRef: { kind: string; name: string };
    metrics: Array<{
      external: {
        metric: { name: string; selector: { matchExpressions: Array<{ key: string; values: string[] }> } };
      };
    }>;
  };
  t.same([hpa.scaleTargetRef.kind, hpa.scaleTargetRef.name], ['Deployment', 'dockhand-worker']);
  const series = await queueGaugeSeries();
  const metric = hpa.metrics[0]?.external.metric;
  t.equal(metric?.name, series.name, 'queues/metrics.ts exports it');
  for (const expression of metric?.selector.matchExpressions ?? []) {
    const seen = new Set(series.labels.map((l) => String(l[expression.key])));
    for (const value of expression.values)
      t.ok(seen.has(value), `${expression.key}=${value} is a series label`);
  }
});
