/**
 * Offline checks of manifests/components/tls on a rendered flavor and of the base's
 * NetworkPolicy, each returning problems as sentences (empty = fine): what the Certificate, the
 * mounts, the server's options, the probes and the agent's TLS_DIR say of each other.
 */
import { hostOf } from '../../agent/core/topology.js';
import { type Container, type KubeDoc, findDoc, podContainers, statefulSet } from './render.js';

interface CertificateDoc extends KubeDoc {
  spec: { secretName: string; issuerRef: { name: string; kind?: string }; dnsNames?: string[]; usages?: string[] };
}

/** Whether a certificate for `names` serves `host` (OpenSSL's rule: a wildcard covers one label). */
function covers(names: readonly string[], host: string): boolean {
  return names.some((n) => n === host || (n.startsWith('*.') && host.endsWith(n.slice(1)) && !host.slice(0, -n.length + 1).includes('.')));
}

const envOf = (c: Container | undefined, name: string) => c?.env?.find((v) => v.name === name)?.value;

export function tlsProblems(docs: KubeDoc[]): string[] {
  const out: string[] = [];
  const problem = (ok: boolean, text: string) => {
    if (!ok) out.push(text);
  };
  const sts = statefulSet(docs);
  const spec = sts.spec.template.spec;
  const cert = docs.find((d): d is CertificateDoc => d.kind === 'Certificate');
  if (!cert) return ['no cert-manager Certificate in the render'];
  const init = spec.initContainers?.find((c) => c.name === 'init');
  const sidecar = spec.containers.find((c) => c.name === 'sidecar');
  const server = spec.containers.find((c) => c.name === 'mysql');
  const tlsDir = envOf(sidecar, 'TLS_DIR');
  problem(tlsDir !== undefined && envOf(init, 'TLS_DIR') === tlsDir, `init and sidecar must have the same TLS_DIR (${envOf(init, 'TLS_DIR')} / ${tlsDir})`);
  const volume = (spec.volumes ?? []).find((v) => (v as { secret?: { secretName?: string } }).secret?.secretName === cert.spec.secretName);
  problem(!!volume, `no volume of the Certificate's Secret ${cert.spec.secretName}`);
  for (const c of [init, server, sidecar]) {
    const mount = c?.volumeMounts?.find((m) => m.name === volume?.name);
    problem(mount?.mountPath === tlsDir && mount?.readOnly === true, `${c?.name}: the Secret ${cert.spec.secretName} must be mounted read-only at TLS_DIR ${tlsDir} (the server reads ca.crt at the path CHANGE MASTER names)`);
  }
  for (const [option, file] of [['--ssl-cert', 'tls.crt'], ['--ssl-key', 'tls.key'], ['--ssl-ca', 'ca.crt']] as const) {
    problem(!!server?.args?.includes(`${option}=${tlsDir}/${file}`), `${server?.name}: the server must get ${option}=${tlsDir}/${file}`);
  }
  for (const probe of ['readinessProbe', 'livenessProbe'] as const) {
    problem((sidecar?.[probe]?.httpGet as { scheme?: string } | undefined)?.scheme === 'HTTPS', `sidecar: ${probe} must use scheme HTTPS (the agent serves HTTPS only)`);
  }
  const names = cert.spec.dnsNames ?? [];
  const hosts = { template: '{set}-{ordinal}.{service}', set: sts.metadata.name, service: sts.spec.serviceName };
  for (let n = 0; n < (sts.spec.replicas ?? 1); n++) {
    problem(covers(names, hostOf(hosts, n)), `Certificate ${cert.metadata.name}: dnsNames ${JSON.stringify(names)} do not cover ${hostOf(hosts, n)}, the name peers and replicas (verify-identity) check`);
  }
  for (const usage of ['server auth', 'client auth']) problem(!!cert.spec.usages?.includes(usage), `Certificate ${cert.metadata.name}: usages must include ${usage}`);
  // A backup Job fetches from the sidecars, which then serve HTTPS only (and /backup to a client certificate).
  for (const job of docs.filter((d): d is CronJobDoc => d.kind === 'CronJob')) {
    const pod = job.spec.jobTemplate.spec.template.spec;
    for (const c of pod.containers.filter((c) => c.args?.[0] === 'backup')) {
      const where = `CronJob/${job.metadata.name}: ${c.name}`;
      problem(envOf(c, 'TLS_DIR') === tlsDir, `${where}: TLS_DIR must be the sidecar's ${tlsDir} (it is ${envOf(c, 'TLS_DIR')}): the sidecars serve HTTPS only`);
      const jobVolume = (pod.volumes ?? []).find((v) => (v as { secret?: { secretName?: string } }).secret?.secretName === cert.spec.secretName);
      const mount = c.volumeMounts?.find((m) => m.name === jobVolume?.name);
      problem(mount?.mountPath === tlsDir && mount?.readOnly === true, `${where}: the Secret ${cert.spec.secretName} must be mounted read-only at TLS_DIR ${tlsDir}`);
    }
  }
  return out;
}

interface CronJobDoc extends KubeDoc {
  spec: { jobTemplate: { spec: { template: { spec: { containers: Container[]; volumes?: { name: string }[] } } } } };
}

interface PolicyDoc extends KubeDoc {
  spec: {
    podSelector: { matchLabels?: Record<string, string> };
    policyTypes?: string[];
    ingress?: { from?: { podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: unknown; ipBlock?: unknown }[]; ports?: { port: number | string }[] }[];
    egress?: unknown[];
  };
}

/** The label of the backup Jobs' pods (components/backup). */
export const BACKUP_JOB_LABEL = { 'app.kubernetes.io/component': 'backup' };

/** 3307 only from this StatefulSet's pods and the backup Jobs, 3306 from the namespace. */
export function networkPolicyProblems(docs: KubeDoc[]): string[] {
  const out: string[] = [];
  const sts = statefulSet(docs);
  const labels = sts.spec.template.metadata.labels;
  const policy = findDoc<PolicyDoc>(docs, 'NetworkPolicy', sts.metadata.name);
  if (!policy) return [`no NetworkPolicy ${sts.metadata.name}`];
  const selects = (m: Record<string, string> | undefined, l: Record<string, string>) => !!m && Object.entries(m).every(([k, v]) => l[k] === v);
  if (!selects(policy.spec.podSelector.matchLabels, labels)) out.push(`NetworkPolicy ${policy.metadata.name} does not select the pods`);
  if (!policy.spec.policyTypes?.includes('Ingress')) out.push(`NetworkPolicy ${policy.metadata.name} must restrict Ingress`);
  // The shipped policy leaves egress alone (manifests/README.md says so): an Egress type would cut
  // whatever its rules do not name, DNS and the store among them. Without policyTypes, egress rules imply it.
  if (policy.spec.policyTypes?.includes('Egress') || (policy.spec.policyTypes === undefined && policy.spec.egress !== undefined)) {
    out.push(`NetworkPolicy ${policy.metadata.name} restricts egress: the sidecar and the backup Jobs reach the object store and DNS, which it must then allow (manifests/README.md, "NetworkPolicy and the store")`);
  }
  const rules = policy.spec.ingress ?? [];
  const agentPort = podContainers(sts.spec.template.spec).find((c) => c.name === 'sidecar')?.ports?.[0]?.containerPort;
  for (const rule of rules.filter((r) => !r.ports || r.ports.some((p) => p.port === agentPort || p.port === 'backup'))) {
    for (const from of rule.from ?? [{}]) {
      const ok = !from.namespaceSelector && !from.ipBlock && (selects(from.podSelector?.matchLabels, labels) || selects(from.podSelector?.matchLabels, BACKUP_JOB_LABEL));
      if (!ok) out.push(`NetworkPolicy ${policy.metadata.name}: port ${agentPort} is open to ${JSON.stringify(from)}, not only this StatefulSet's pods and the backup Jobs`);
    }
  }
  const serverRule = rules.find((r) => r.ports?.some((p) => p.port === 3306));
  if (!serverRule?.from?.some((f) => f.podSelector !== undefined && Object.keys(f.podSelector.matchLabels ?? {}).length === 0 && !f.namespaceSelector)) {
    out.push(`NetworkPolicy ${policy.metadata.name}: 3306 must be open to every pod of the namespace (podSelector: {})`);
  }
  return out;
}

/** The issuer's name appears once in the component's sources: it is changed in one place. */
export function issuerMentions(sources: Readonly<Record<string, string>>, issuer: string): string[] {
  return Object.entries(sources).flatMap(([file, text]) => text.split('\n').filter((l) => l.includes(issuer)).map((l) => `${file}: ${l.trim()}`));
}
