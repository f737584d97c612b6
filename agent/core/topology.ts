/**
 * Where this pod sits in the StatefulSet: its ordinal, its role, its server-id and the hosts of
 * its peers. Pure functions over the pod name and the configured templates.
 */
import { isIPv6 } from 'node:net';

declare const ordinalBrand: unique symbol;
/** A StatefulSet pod ordinal: the trailing `-N` of the pod name. */
export type Ordinal = number & { readonly [ordinalBrand]: true };

export type Role = 'primary' | 'replica';

export interface PodIdentity {
  /** The StatefulSet name: the pod name without its `-N`. */
  readonly set: string;
  readonly ordinal: Ordinal;
}

const POD_NAME = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)-(0|[1-9][0-9]{0,5})$/;

/** Splits `mysql-2` into set `mysql` and ordinal 2; null when the name has no `-N`. */
export function parsePodName(name: string): PodIdentity | null {
  const m = POD_NAME.exec(name);
  if (!m) return null;
  return { set: m[1]!, ordinal: Number(m[3]) as Ordinal };
}

/** Ordinal 0 is the primary, as in the tutorial; every other ordinal replicates from it. */
export function roleOf(ordinal: Ordinal): Role {
  return ordinal === 0 ? 'primary' : 'replica';
}

/** server-id must be unique in the set and never 0 (0 disables replication). */
export function serverIdOf(offset: number, ordinal: Ordinal): number {
  return offset + ordinal;
}

/** Expands `{set}`, `{ordinal}` and `{service}` in a host template. */
export function peerHost(template: string, set: string, service: string, ordinal: Ordinal): string {
  return template
    .replaceAll('{set}', set)
    .replaceAll('{service}', service)
    .replaceAll('{ordinal}', String(ordinal));
}

/** How peers are named: the host template with this StatefulSet's name and Service. */
export interface PeerHosts {
  readonly template: string;
  readonly set: string;
  readonly service: string;
}

/** The host of the agent (and server) at an ordinal. */
export function hostOf(hosts: PeerHosts, ordinal: Ordinal | number): string {
  return peerHost(hosts.template, hosts.set, hosts.service, ordinal as Ordinal);
}

/** `host:port` as URLs and log lines write it: an IPv6 literal in brackets (`[fd00::12]:3307`). */
export function hostPort(host: string, port: number): string {
  return `${isIPv6(host) ? `[${host}]` : host}:${port}`;
}
